"""A toy model registered as one package and one YAML file (tests/conf/model/toy.yaml)."""

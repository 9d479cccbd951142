"""Models-from-code entry for MLflow: logged as the model's code, run when the model loads.

Logging the model from this file (rather than pickling a `PickModel` object) keeps the model
free of pickled Python objects; `code_paths` ships the package next to it.
"""

from mlflow.models import set_model

from ashare_autotune.tracking.pyfunc_model import PickModel

set_model(PickModel())

"""Models behind one small protocol (`base`): one package per library, chosen by `model=`."""

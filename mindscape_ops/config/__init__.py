"""platform.yaml: the models (models.py, one section per module) and the loader (loader.py).
Import what you need from its module: this package imports nothing, so loading one module
(the JSON Schema, the rules) does not load the rest."""

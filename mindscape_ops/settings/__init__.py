"""The building blocks of platform.yaml's models: the base of every section (strict, a
service's image, port and health) and the checked scalar types (durations, sizes, names).
Below the services layer, so a service module can define its settings without importing the
models that list every service (config/)."""

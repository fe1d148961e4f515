# prod add-ons: the platform (infra/env/prod.tfvars) holds the infrastructure sizes; these are the in-cluster ones.
environment = "prod"

prometheus_replicas    = 2
prometheus_retention   = "30d"
prometheus_storage_gib = 200
alertmanager_replicas  = 3
controller_replicas    = 2

# dev add-ons: the platform (infra/env/dev.tfvars) holds the infrastructure sizes; these are the in-cluster ones.
environment = "dev"

prometheus_replicas    = 1
prometheus_retention   = "7d"
prometheus_storage_gib = 50
alertmanager_replicas  = 1
controller_replicas    = 1

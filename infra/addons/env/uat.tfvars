# uat add-ons: the platform (infra/env/uat.tfvars) holds the infrastructure sizes; these are the in-cluster ones.
environment = "uat"

prometheus_replicas    = 2
prometheus_retention   = "15d"
prometheus_storage_gib = 100
alertmanager_replicas  = 2
controller_replicas    = 2

# uat: production's shape at a smaller size (three zones, Multi-AZ database with deletion protection
# and a final snapshot, two OpenSearch nodes in two zones), one NAT gateway to save cost.
environment = "uat"
region      = "eu-west-1"

dns_subdomain = "uat"
vpc_cidr      = "10.20.0.0/16"
az_count      = 3

single_nat_gateway = true

node_instance_types = ["m7i.large", "m6i.large"]
node_min_size       = 3
node_max_size       = 6
node_desired_size   = 3

db_instance_class            = "db.m7g.large"
db_allocated_storage_gib     = 50
db_max_allocated_storage_gib = 200
db_multi_az                  = true
db_deletion_protection       = true
db_final_snapshot            = true
db_backup_retention_days     = 14

opensearch_instance_type          = "m7g.large.search"
opensearch_instance_count         = 2
opensearch_volume_size_gib        = 50
opensearch_dedicated_master_count = 0

log_retention_days = 90
ecr_force_delete   = false

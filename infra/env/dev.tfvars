# dev: smallest footprint that still exercises everything (two zones, one NAT gateway, single-AZ
# database without deletion protection, one OpenSearch node). Account-wide settings (repository,
# DNS zone, administrators, allowed CIDRs) come from infra/account.tfvars, passed by run.sh.
environment = "dev"
region      = "eu-west-1"

dns_subdomain = "dev"
vpc_cidr      = "10.10.0.0/16"
az_count      = 2

single_nat_gateway = true

node_instance_types = ["m7i.large", "m6i.large"]
node_min_size       = 2
node_max_size       = 4
node_desired_size   = 2

db_instance_class            = "db.t4g.medium"
db_allocated_storage_gib     = 20
db_max_allocated_storage_gib = 100
db_multi_az                  = false
db_deletion_protection       = false
db_final_snapshot            = false
db_backup_retention_days     = 7

opensearch_instance_type          = "m6g.large.search"
opensearch_instance_count         = 1
opensearch_volume_size_gib        = 20
opensearch_dedicated_master_count = 0

log_retention_days = 30
ecr_force_delete   = true

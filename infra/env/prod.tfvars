# prod: one NAT gateway per zone (a zone's outage does not cut egress), Multi-AZ database with deletion
# protection, 30 days of backups and a final snapshot, three OpenSearch data nodes over three zones
# with dedicated cluster-manager nodes. Host names sit at the zone itself (taskboard.<zone>).
environment = "prod"
region      = "eu-west-1"

dns_subdomain = ""
vpc_cidr      = "10.30.0.0/16"
az_count      = 3

single_nat_gateway = false

node_instance_types = ["m7i.xlarge", "m6i.xlarge"]
node_min_size       = 3
node_max_size       = 9
node_desired_size   = 3

db_instance_class            = "db.m7g.xlarge"
db_allocated_storage_gib     = 100
db_max_allocated_storage_gib = 500
db_multi_az                  = true
db_deletion_protection       = true
db_final_snapshot            = true
db_backup_retention_days     = 30

opensearch_instance_type          = "m7g.large.search"
opensearch_instance_count         = 3
opensearch_volume_size_gib        = 100
opensearch_dedicated_master_count = 3

log_retention_days = 365
ecr_force_delete   = false

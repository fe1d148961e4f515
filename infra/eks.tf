################################################################################
# EKS: private nodes, access entries (no aws-auth ConfigMap), secrets encrypted with KMS, control-plane
# logs, API reachable privately and from an allow-list.
################################################################################

locals {
  access_policy_prefix = "arn:${local.partition}:eks::aws:cluster-access-policy"

  # Static keys (known at plan time) for every access entry; principals may be unknown until apply.
  admin_access_entries = {
    for index, arn in var.cluster_admin_arns : "admin-${index}" => {
      principal_arn = arn
      policy_associations = {
        admin = {
          policy_arn   = "${local.access_policy_prefix}/AmazonEKSClusterAdminPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  }
}

module "eks" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 21.19"

  name               = local.name
  kubernetes_version = var.kubernetes_version

  # Stay on standard support: extended support costs six times as much per cluster hour.
  upgrade_policy = {
    support_type = "STANDARD"
  }

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.private_subnets

  endpoint_private_access      = true
  endpoint_public_access       = true
  endpoint_public_access_cidrs = var.api_public_access_cidrs

  enabled_log_types                      = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  cloudwatch_log_group_retention_in_days = var.log_retention_days
  cloudwatch_log_group_kms_key_id        = aws_kms_key.logs.arn

  # The module creates the envelope-encryption key for Kubernetes Secrets (rotation on).
  create_kms_key    = true
  encryption_config = { resources = ["secrets"] }

  # IRSA for the add-ons (trust policies name namespace:serviceaccount from cluster.yaml).
  enable_irsa = true

  # Access entries only. The CI apply role administers the cluster (the add-ons stage runs Helm with it);
  # the plan role can read everything, Secrets included, because Helm stores release state in Secrets.
  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = false
  access_entries = merge(local.admin_access_entries, {
    ci-apply = {
      principal_arn = module.github_apply.arn
      policy_associations = {
        admin = {
          policy_arn   = "${local.access_policy_prefix}/AmazonEKSClusterAdminPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
    ci-plan = {
      principal_arn = module.github_plan.arn
      policy_associations = {
        view = {
          policy_arn   = "${local.access_policy_prefix}/AmazonEKSAdminViewPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  })

  addons = {
    coredns                = {}
    kube-proxy             = {}
    eks-pod-identity-agent = { before_compute = true }
    vpc-cni = {
      before_compute           = true
      service_account_role_arn = module.vpc_cni_irsa.arn
      # Enforce Kubernetes NetworkPolicies (the workload manifests default-deny every namespace).
      configuration_values = jsonencode({ enableNetworkPolicy = "true" })
    }
    aws-ebs-csi-driver = {
      service_account_role_arn = module.ebs_csi_irsa.arn
    }
  }

  eks_managed_node_groups = {
    default = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.node_instance_types
      capacity_type  = "ON_DEMAND"
      subnet_ids     = module.vpc.private_subnets

      min_size     = var.node_min_size
      max_size     = var.node_max_size
      desired_size = var.node_desired_size

      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = var.node_disk_size_gib
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }

      # IMDSv2 only, one hop: pods cannot borrow the node role (they get their own via IRSA).
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }

      update_config = { max_unavailable_percentage = 33 }
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      "app.kubernetes.io/part-of" = "creatormesh"
      "managed-by"                = "terraform"
    }
  }
}

module "platform" {
  source            = "../../modules/platform"
  environment       = "production"
  subnet_ids        = var.subnet_ids
  cpu_nodes         = { min = 3, max = 20, desired = 4 }
  gpu_nodes         = { min = 1, max = 8, desired = 2 }
  gpu_capacity_type = "ON_DEMAND"
  media_bucket      = "creatormesh-production-media"
  log_bucket        = var.log_bucket
}

output "platform" {
  description = "Cluster, registries, media bucket and service roles of production."
  value       = module.platform
}

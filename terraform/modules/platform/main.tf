# Everything one environment needs: the cluster, a CPU and a tainted GPU node group, image registries, media
# storage, and IAM roles for the services that write media (clips, videos, LoRA adapters).

locals {
  name      = "creatormesh-${var.environment}"
  namespace = "creatormesh-${var.environment}"
  tags      = merge(var.tags, { "creatormesh.io/environment" = var.environment })
  # Services that read and write the media bucket, by Kubernetes service account name.
  media_writers = { stream_clipper = "stream-clipper", video_diffusion = "video-diffusion" }
}

module "cluster" {
  source             = "../eks-cluster"
  name               = local.name
  kubernetes_version = var.kubernetes_version
  subnet_ids         = var.subnet_ids
  tags               = local.tags
}

module "cpu_nodes" {
  source         = "../node-group"
  cluster_name   = module.cluster.name
  name           = "cpu"
  subnet_ids     = var.subnet_ids
  ami_type       = "AL2023_x86_64_STANDARD"
  instance_types = var.cpu_instance_types
  min_size       = var.cpu_nodes.min
  max_size       = var.cpu_nodes.max
  desired_size   = var.cpu_nodes.desired
  tags           = local.tags
}

module "gpu_nodes" {
  source         = "../node-group"
  cluster_name   = module.cluster.name
  name           = "gpu"
  subnet_ids     = var.subnet_ids
  ami_type       = "AL2023_x86_64_NVIDIA"
  instance_types = var.gpu_instance_types
  capacity_type  = var.gpu_capacity_type
  min_size       = var.gpu_nodes.min
  max_size       = var.gpu_nodes.max
  desired_size   = var.gpu_nodes.desired
  disk_size_gb   = 300
  labels         = { "nvidia.com/gpu.present" = "true" }
  taints         = [{ key = "nvidia.com/gpu", value = "present", effect = "NoSchedule" }]
  tags           = local.tags
}

module "registry" {
  source   = "../registry"
  services = var.services
  tags     = local.tags
}

module "media" {
  source     = "../object-storage"
  bucket     = var.media_bucket
  log_bucket = var.log_bucket
  tags       = local.tags
}

data "aws_iam_policy_document" "media" {
  for_each = local.media_writers
  statement {
    sid       = "OwnPrefix"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.media.arn}/${each.key == "stream_clipper" ? "clips" : "videos"}/*"]
  }
  statement {
    sid       = "List"
    actions   = ["s3:ListBucket"]
    resources = [module.media.arn]
  }
  statement {
    sid       = "Encryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.media.kms_key_arn]
  }
}

module "media_roles" {
  source            = "../irsa-role"
  for_each          = local.media_writers
  name              = "${local.name}-${each.value}"
  oidc_provider_arn = module.cluster.oidc_provider_arn
  oidc_issuer       = module.cluster.oidc_issuer
  namespace         = local.namespace
  service_account   = each.value
  policy_json       = data.aws_iam_policy_document.media[each.key].json
  tags              = local.tags
}

# One ECR repository per service: immutable tags (a version tag always means the same image, which the chart relies
# on), scanning on push, KMS encryption, and a lifecycle that keeps the newest images.

resource "aws_kms_key" "registry" {
  # checkov:skip=CKV2_AWS_64:The default key policy (the account administers the key) is intended; ECR uses it through its service grant.
  description         = "${var.prefix}: container images"
  enable_key_rotation = true
  tags                = var.tags
}

resource "aws_ecr_repository" "service" {
  for_each             = var.services
  name                 = "${var.prefix}/${replace(each.value, "_", "-")}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.registry.arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "service" {
  for_each   = aws_ecr_repository.service
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the newest ${var.keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.keep_images
      }
      action = { type = "expire" }
    }]
  })
}

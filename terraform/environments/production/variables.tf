variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "subnet_ids" {
  description = "Private subnets of the environment's VPC (owned by the network stack)."
  type        = list(string)
}

variable "log_bucket" {
  description = "Existing bucket for S3 access logs."
  type        = string
}

variable "environment" {
  description = "staging or production."
  type        = string
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "subnet_ids" {
  description = "Private subnets (at least two availability zones) of the cluster and its nodes."
  type        = list(string)
}

variable "kubernetes_version" {
  description = "EKS version."
  type        = string
  default     = "1.33"
}

variable "cpu_instance_types" {
  description = "CPU node instance types."
  type        = list(string)
  default     = ["m7i.2xlarge", "m6i.2xlarge"]
}

variable "cpu_nodes" {
  description = "CPU node group bounds."
  type        = object({ min = number, max = number, desired = number })
}

variable "gpu_instance_types" {
  description = "GPU node instance types (one NVIDIA GPU each: video_diffusion, vLLM)."
  type        = list(string)
  default     = ["g6e.2xlarge", "g5.2xlarge"]
}

variable "gpu_nodes" {
  description = "GPU node group bounds (min 0 lets the autoscaler remove idle GPUs)."
  type        = object({ min = number, max = number, desired = number })
}

variable "gpu_capacity_type" {
  description = "ON_DEMAND or SPOT for the GPU nodes."
  type        = string
  default     = "ON_DEMAND"
}

variable "services" {
  description = "Service images (one registry repository each)."
  type        = set(string)
  default     = ["allocation", "ranking", "viral_scoring", "stream_clipper", "video_diffusion"]
}

variable "media_bucket" {
  description = "Bucket for clips and generated videos."
  type        = string
}

variable "log_bucket" {
  description = "Existing bucket for S3 access logs."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

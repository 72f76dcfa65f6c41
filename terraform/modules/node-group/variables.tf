variable "cluster_name" {
  description = "EKS cluster the nodes join."
  type        = string
}

variable "name" {
  description = "Node group name, also the value of the creatormesh.io/node-pool label (cpu, gpu)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the nodes."
  type        = list(string)
}

variable "ami_type" {
  description = "EKS-optimised AMI: AL2023_x86_64_STANDARD for CPU, AL2023_x86_64_NVIDIA for GPU (driver included)."
  type        = string
  default     = "AL2023_x86_64_STANDARD"
  validation {
    condition     = contains(["AL2023_x86_64_STANDARD", "AL2023_x86_64_NVIDIA", "AL2023_ARM_64_STANDARD", "BOTTLEROCKET_x86_64_NVIDIA"], var.ami_type)
    error_message = "ami_type must be an AL2023 or Bottlerocket EKS AMI type."
  }
}

variable "instance_types" {
  description = "Instance types, first choice first."
  type        = list(string)
}

variable "capacity_type" {
  description = "ON_DEMAND or SPOT."
  type        = string
  default     = "ON_DEMAND"
}

variable "min_size" {
  description = "Fewest nodes (the cluster autoscaler's lower bound)."
  type        = number
}

variable "max_size" {
  description = "Most nodes (the cluster autoscaler's upper bound)."
  type        = number
}

variable "desired_size" {
  description = "Nodes at creation; the autoscaler owns it afterwards."
  type        = number
}

variable "disk_size_gb" {
  description = "Root volume size (images with CUDA and models are large)."
  type        = number
  default     = 100
}

variable "labels" {
  description = "Kubernetes labels besides creatormesh.io/node-pool."
  type        = map(string)
  default     = {}
}

variable "taints" {
  description = "Kubernetes taints, e.g. nvidia.com/gpu=present:NoSchedule on GPU nodes."
  type = list(object({
    key    = string
    value  = string
    effect = string
  }))
  default = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

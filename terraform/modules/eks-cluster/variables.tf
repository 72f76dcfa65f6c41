variable "name" {
  description = "Cluster name."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (the chart is validated against it)."
  type        = string
  default     = "1.33"
}

variable "subnet_ids" {
  description = "Private subnets of the control plane's network interfaces and of the node groups."
  type        = list(string)
}

variable "public_endpoint" {
  description = "Expose the API server publicly (restricted to public_access_cidrs). Off: reachable from the VPC only."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to the public API endpoint when it is on."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the control plane logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

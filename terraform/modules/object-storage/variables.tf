variable "bucket" {
  description = "Bucket for clips, generated videos and LoRA adapters."
  type        = string
}

variable "log_bucket" {
  description = "Bucket that receives this bucket's server access logs."
  type        = string
}

variable "noncurrent_days" {
  description = "Days an overwritten or deleted object version is kept."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "prefix" {
  description = "Repository name prefix (repositories are <prefix>/<service>)."
  type        = string
  default     = "creatormesh"
}

variable "services" {
  description = "One repository per service image."
  type        = set(string)
}

variable "keep_images" {
  description = "Images kept per repository (older ones expire)."
  type        = number
  default     = 50
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

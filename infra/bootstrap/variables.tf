variable "region" {
  description = "Region of the state bucket"
  type        = string
}

variable "bucket_name" {
  description = "State bucket name; null derives a globally unique one from the account id and region"
  type        = string
  default     = null
}

variable "noncurrent_version_days" {
  description = "Days a superseded state version is kept (the way back from a bad apply)"
  type        = number
  default     = 90
}

variable "name" {
  description = "A name for this CRM's resources (letters, digits and hyphens)."
  type        = string
  default     = "crm-rs"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: 2 to 31 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "image" {
  description = "The crm-server container image (the Dockerfile's), pinned by digest."
  type        = string
}

variable "vpc_id" {
  description = "The VPC the CRM runs in."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer (two or more, in different zones)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the servers and the database (two or more, in different zones), with a route to the internet (a NAT gateway) or VPC endpoints for S3, Secrets Manager, ECR and CloudWatch Logs."
  type        = list(string)
}

variable "domain" {
  description = "The CRM's public host name (crm.example.com)."
  type        = string
}

variable "certificate_arn" {
  description = "The ACM certificate of the domain, for the load balancer's HTTPS listener."
  type        = string
}

variable "access_log_bucket" {
  description = "An existing S3 bucket that receives the load balancer's and the file bucket's access logs."
  type        = string
}

variable "replicas" {
  description = "How many crm-server tasks run (every one serves and delivers; deliveries are claimed, so each is sent once)."
  type        = number
  default     = 2
}

variable "task_cpu" {
  description = "CPU units of each task."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Memory of each task, in MiB."
  type        = number
  default     = 1024
}

variable "db_instance_class" {
  description = "The PostgreSQL instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "PostgreSQL storage in GiB (it grows by itself up to ten times this)."
  type        = number
  default     = 50
}

variable "db_multi_az" {
  description = "A standby in a second zone."
  type        = bool
  default     = true
}

variable "smtp_url" {
  description = "The mail relay (smtps://user:pass@email-smtp.eu-west-1.amazonaws.com:465, for one); kept in Secrets Manager."
  type        = string
  sensitive   = true
  default     = ""
}

variable "mail_from" {
  description = "The sender of the CRM's emails."
  type        = string
  default     = "crm-rs <no-reply@example.com>"
}

variable "log_retention_days" {
  description = "How long the servers' logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "cache_node_type" {
  description = "The Valkey nodes' class (two, in two zones): the replicas' shared rate-limit counters, a few keys per client."
  type        = string
  default     = "cache.t4g.micro"
}

output "url" {
  description = "The CRM's address (point the domain's DNS at load_balancer_dns first)."
  value       = "https://${var.domain}"
}

output "load_balancer_dns" {
  description = "The load balancer's DNS name: the target of the domain's CNAME or alias record."
  value       = aws_lb.crm.dns_name
}

output "files_bucket" {
  description = "The S3 bucket of uploaded files."
  value       = aws_s3_bucket.files.id
}

output "database_endpoint" {
  description = "The PostgreSQL endpoint (reachable from the servers' subnets only)."
  value       = aws_db_instance.crm.address
}

output "secret_arn" {
  description = "The Secrets Manager secret holding the server's keys and database URL."
  value       = aws_secretsmanager_secret.crm.arn
}

output "cache_endpoint" {
  description = "The Valkey primary endpoint (TLS, token in the secret; reachable from the servers only)."
  value       = aws_elasticache_replication_group.crm.primary_endpoint_address
}

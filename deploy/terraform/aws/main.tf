data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  tags = merge({ "app" = "crm-rs", "crm-rs/name" = var.name }, var.tags)
  port = 8080
}

# --- Encryption: one customer-managed key for the files, the database, the secrets and the logs

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:A key policy's "*" resource is the key itself.
  #checkov:skip=CKV_AWS_356:A key policy's "*" resource is the key itself.
  #checkov:skip=CKV_AWS_109:The account's root keeps administering its key, as AWS's default key policy does.
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "Logs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.region}.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "crm" {
  description             = "${var.name}: files, database, secrets and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "crm" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.crm.key_id
}

# --- Files (avatars, attachments, imports): an S3 bucket, private, versioned, encrypted

resource "aws_s3_bucket" "files" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a recovery choice left to the operator (it needs a second region's bucket).
  #checkov:skip=CKV2_AWS_62:Nothing acts on file events; crm-server is the only writer.
  bucket_prefix = "${var.name}-files-"
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "files" {
  bucket                  = aws_s3_bucket.files.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "files" {
  bucket = aws_s3_bucket.files.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "files" {
  bucket = aws_s3_bucket.files.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.crm.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "files" {
  bucket = aws_s3_bucket.files.id
  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_logging" "files" {
  bucket        = aws_s3_bucket.files.id
  target_bucket = var.access_log_bucket
  target_prefix = "${var.name}/files/"
}

# --- Network: the load balancer takes HTTPS from anyone, the servers only from it, the database only from the servers

resource "aws_security_group" "alb" {
  name_prefix = "${var.name}-alb-"
  description = "${var.name}: the load balancer"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from anywhere"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 only redirects to HTTPS (the listener below).
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from anywhere, redirected to HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_servers" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the servers"
  referenced_security_group_id = aws_security_group.server.id
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
}

resource "aws_security_group" "server" {
  name_prefix = "${var.name}-server-"
  description = "${var.name}: the crm-server tasks"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "server_from_alb" {
  security_group_id            = aws_security_group.server.id
  description                  = "From the load balancer"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
}

resource "aws_vpc_security_group_egress_rule" "server_to_db" {
  security_group_id            = aws_security_group.server.id
  description                  = "To PostgreSQL"
  referenced_security_group_id = aws_security_group.db.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "server_https" {
  security_group_id = aws_security_group.server.id
  description       = "HTTPS out: S3, Secrets Manager, ECR, webhooks, Stripe"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "server_smtp" {
  for_each          = toset(["465", "587"])
  security_group_id = aws_security_group.server.id
  description       = "SMTP submission out: the mail relay"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
}

resource "aws_security_group" "db" {
  name_prefix = "${var.name}-db-"
  description = "${var.name}: PostgreSQL"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "db_from_servers" {
  security_group_id            = aws_security_group.db.id
  description                  = "From the servers"
  referenced_security_group_id = aws_security_group.server.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "server_to_cache" {
  security_group_id            = aws_security_group.server.id
  description                  = "To Valkey (the shared rate-limit counters)"
  referenced_security_group_id = aws_security_group.cache.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_security_group" "cache" {
  name_prefix = "${var.name}-cache-"
  description = "${var.name}: Valkey"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "cache_from_servers" {
  security_group_id            = aws_security_group.cache.id
  description                  = "From the servers"
  referenced_security_group_id = aws_security_group.server.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

# --- Valkey: the replicas' shared counters (sign-in rate limits, report slots)

resource "random_password" "cache" {
  length  = 40
  special = false
}

resource "aws_elasticache_subnet_group" "crm" {
  name        = "${var.name}-cache"
  description = "${var.name}: the cache's subnets"
  subnet_ids  = var.private_subnet_ids
  tags        = local.tags
}

resource "aws_elasticache_replication_group" "crm" {
  replication_group_id       = "${var.name}-cache"
  description                = "${var.name}: crm-server's shared rate-limit counters"
  engine                     = "valkey"
  engine_version             = "8.0"
  node_type                  = var.cache_node_type
  num_cache_clusters         = 2
  port                       = 6379
  parameter_group_name       = "default.valkey8"
  subnet_group_name          = aws_elasticache_subnet_group.crm.name
  security_group_ids         = [aws_security_group.cache.id]
  automatic_failover_enabled = true
  multi_az_enabled           = true
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.crm.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.cache.result
  auto_minor_version_upgrade = true
  snapshot_retention_limit   = 1
  tags                       = local.tags
}

# --- PostgreSQL

resource "random_password" "db" {
  length  = 40
  special = false
}

resource "aws_db_subnet_group" "crm" {
  name_prefix = "${var.name}-"
  description = "${var.name}: the database's subnets"
  subnet_ids  = var.private_subnet_ids
  tags        = local.tags
}

resource "aws_db_parameter_group" "crm" {
  name_prefix = "${var.name}-pg16-"
  family      = "postgres16"
  description = "${var.name}: TLS only, slow statements and connections logged"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  tags = local.tags
  lifecycle {
    create_before_destroy = true
  }
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name_prefix        = "${var.name}-rds-mon-"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "crm" {
  identifier_prefix                     = "${var.name}-"
  engine                                = "postgres"
  engine_version                        = "16"
  instance_class                        = var.db_instance_class
  allocated_storage                     = var.db_allocated_storage
  max_allocated_storage                 = var.db_allocated_storage * 10
  storage_type                          = "gp3"
  storage_encrypted                     = true
  kms_key_id                            = aws_kms_key.crm.arn
  db_name                               = "crm"
  username                              = "crm"
  password                              = random_password.db.result
  db_subnet_group_name                  = aws_db_subnet_group.crm.name
  vpc_security_group_ids                = [aws_security_group.db.id]
  parameter_group_name                  = aws_db_parameter_group.crm.name
  multi_az                              = var.db_multi_az
  publicly_accessible                   = false
  backup_retention_period               = 14
  copy_tags_to_snapshot                 = true
  deletion_protection                   = true
  skip_final_snapshot                   = false
  final_snapshot_identifier             = "${var.name}-final"
  auto_minor_version_upgrade            = true
  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.crm.arn
  performance_insights_retention_period = 7
  tags                                  = local.tags
}

# --- Secrets: the keys every replica shares, the database URL, the mail relay

resource "random_id" "key" {
  for_each    = toset(["jwt", "seal", "audit", "billing"])
  byte_length = 32
}

resource "aws_secretsmanager_secret" "crm" {
  #checkov:skip=CKV2_AWS_57:These keys rotate by crm-server's own procedure (previous keys kept for verifying), not by a Lambda.
  name_prefix             = "${var.name}/server-"
  description             = "${var.name}: crm-server's keys, database URL and mail relay"
  kms_key_id              = aws_kms_key.crm.arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "crm" {
  secret_id = aws_secretsmanager_secret.crm.id
  secret_string = jsonencode({
    CRM_JWT_SECRET     = random_id.key["jwt"].hex
    CRM_SEAL_KEY       = random_id.key["seal"].hex
    CRM_AUDIT_KEY      = random_id.key["audit"].hex
    CRM_BILLING_KEY    = random_id.key["billing"].hex
    CRM_DATABASE_URL   = "postgres://crm:${random_password.db.result}@${aws_db_instance.crm.address}:${aws_db_instance.crm.port}/crm?sslmode=require"
    CRM_SMTP_URL       = var.smtp_url
    # TLS (rediss) with the token: the cache takes nothing else.
    CRM_REDIS_URL = "rediss://:${random_password.cache.result}@${aws_elasticache_replication_group.crm.primary_endpoint_address}:6379/0"
  })
}

# --- Logs

resource "aws_cloudwatch_log_group" "crm" {
  name              = "/crm-rs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.crm.arn
  tags              = local.tags
}

# --- The servers: ECS on Fargate

data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.crm.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.crm.arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name_prefix = "secrets-"
  role        = aws_iam_role.execution.id
  policy      = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task_files" {
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.files.arn}/*"]
  }
  statement {
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.files.arn]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.crm.arn]
  }
}

resource "aws_iam_role_policy" "task_files" {
  name_prefix = "files-"
  role        = aws_iam_role.task.id
  policy      = data.aws_iam_policy_document.task_files.json
}

resource "aws_ecs_cluster" "crm" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = local.tags
}

resource "aws_ecs_task_definition" "crm" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  volume {
    name = "scratch"
  }
  # Health: the load balancer asks /readyz (the image has no shell or HTTP client for a
  # container health check).
  container_definitions = jsonencode([{
    name                   = "crm-server"
    image                  = var.image
    essential              = true
    command                = ["serve"]
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = local.port, protocol = "tcp" }]
    mountPoints            = [{ sourceVolume = "scratch", containerPath = "/data" }]
    environment = [
      { name = "CRM_BIND", value = "0.0.0.0:${local.port}" },
      { name = "CRM_PUBLIC_URL", value = "https://${var.domain}" },
      { name = "CRM_FILES_URL", value = "s3://${aws_s3_bucket.files.id}/files" },
      { name = "AWS_REGION", value = data.aws_region.current.region },
      { name = "CRM_MAIL_FROM", value = var.mail_from },
      { name = "CRM_MAIL_DIR", value = "/data/mail-outbox" },
      { name = "CRM_LOG_FORMAT", value = "json" },
      { name = "CRM_TRUSTED_PROXIES", value = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16" },
    ]
    secrets = [for k in ["CRM_JWT_SECRET", "CRM_SEAL_KEY", "CRM_AUDIT_KEY", "CRM_BILLING_KEY", "CRM_DATABASE_URL", "CRM_SMTP_URL", "CRM_REDIS_URL"] :
      { name = k, valueFrom = "${aws_secretsmanager_secret.crm.arn}:${k}::" }
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.crm.name
        "awslogs-region"        = data.aws_region.current.region
        "awslogs-stream-prefix" = "crm-server"
      }
    }
  }])
  tags = local.tags
}

resource "aws_ecs_service" "crm" {
  name                               = var.name
  cluster                            = aws_ecs_cluster.crm.id
  task_definition                    = aws_ecs_task_definition.crm.arn
  desired_count                      = var.replicas
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  propagate_tags                     = "SERVICE"
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.server.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.crm.arn
    container_name   = "crm-server"
    container_port   = local.port
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  depends_on = [aws_lb_listener.https]
  tags       = local.tags
}

# --- The load balancer: HTTPS (TLS 1.2+), HTTP redirected, behind AWS WAF's managed rules

resource "aws_lb" "crm" {
  #checkov:skip=CKV2_AWS_76:Log4j's rule is in KnownBadInputs (attached); the check also wants AnonymousIpList, which would lock out staff on VPNs and the payment and chat providers calling from cloud hosts.
  name_prefix                = "crm-"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  access_logs {
    bucket  = var.access_log_bucket
    prefix  = "${var.name}/alb"
    enabled = true
  }
  tags = local.tags
}

resource "aws_lb_target_group" "crm" {
  name_prefix          = "crm-"
  port                 = local.port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 40
  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  tags = local.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.crm.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.crm.arn
  }
  tags = local.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.crm.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
  tags = local.tags
}

resource "aws_wafv2_web_acl" "crm" {
  name        = var.name
  description = "${var.name}: AWS managed rules in front of crm-server"
  scope       = "REGIONAL"
  default_action {
    allow {}
  }
  rule {
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
        # Attachments and imports are up to 25 MiB: the set's body-size rule only counts.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "common"
      sampled_requests_enabled   = true
    }
  }
  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }
  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }
  tags = local.tags
}

resource "aws_cloudwatch_log_group" "waf" {
  # WAF's log group names must start with aws-waf-logs-.
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.crm.arn
  tags              = local.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "crm" {
  resource_arn            = aws_wafv2_web_acl.crm.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}

resource "aws_wafv2_web_acl_association" "crm" {
  resource_arn = aws_lb.crm.arn
  web_acl_arn  = aws_wafv2_web_acl.crm.arn
}

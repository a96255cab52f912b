# vpc-auditor's IAM role: the same role as deploy/iam/auditor-role.template.yaml
# (CloudFormation). Use this folder as a root module (terraform apply here) or as a module.
#
# Least privilege: every permission action below is a call the collector makes
# (src/collect/); tests/deploy.rs fails when they differ. EC2 Describe* and
# iam:GetAccountAuthorizationDetails support no resource-level permissions, so their only
# possible resource is "*"; nothing here writes, and no action is a wildcard. The ECR and
# Secrets Manager reads are on "*" too: the registries and secrets are named by rule packs.
# sts:GetCallerIdentity, which the auditor also calls, needs no permission.

locals {
  oidc_issuer        = trimprefix(var.oidc_issuer, "https://")
  trust_eks          = contains(["eks-irsa", "eks-irsa-and-ecs-tasks"], var.trusted_by)
  trust_ecs          = contains(["ecs-tasks", "eks-irsa-and-ecs-tasks"], var.trusted_by)
  trust_auditor_role = var.trusted_by == "auditor-role"

  # One call per resource type per region (DescribeVpcAttribute: two per VPC).
  ec2_read_actions = [
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways",
    # Gateway Load Balancer and Network Firewall endpoints' interfaces.
    "ec2:DescribeNetworkInterfaces",
    # The account's enabled regions, for an account configured with regions: all.
    "ec2:DescribeRegions",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTransitGatewayVpcAttachments",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
    # Entries of the prefix lists the endpoints' security groups reference.
    "ec2:GetManagedPrefixListEntries",
  ]

  # Every role with its trust policy and policies, for the IAM drift rules; called only when
  # a loaded rule pack expects roles or checks secrets (secrets_manager:).
  iam_read_actions = [
    "iam:GetAccountAuthorizationDetails",
    # The account's OIDC providers, for the custom-role trust rule; called only when a
    # loaded rule pack has custom_roles.
    "iam:ListOpenIDConnectProviders",
  ]

  # Only when a loaded rule pack asks: a declared cross-account ECR registry's repositories
  # and their policies (`cross_account_ecr:`), and the names and ARNs of the secrets in the
  # data plane's region (`secrets_manager:`). Secret values are never read.
  registry_and_secret_read_actions = [
    "ecr:DescribeRepositories",
    "ecr:GetRepositoryPolicy",
    "secretsmanager:ListSecrets",
  ]
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "trust" {
  # IRSA: only this service account's tokens, and only tokens minted for STS.
  dynamic "statement" {
    for_each = local.trust_eks ? [1] : []
    content {
      sid     = "EksServiceAccount"
      effect  = "Allow"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/${local.oidc_issuer}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${local.oidc_issuer}:sub"
        values   = ["system:serviceaccount:${var.kubernetes_namespace}:${var.kubernetes_service_account}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${local.oidc_issuer}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }

  # ECS tasks of this account only: the source conditions stop another account's task from
  # borrowing the role through ECS (the confused-deputy problem).
  dynamic "statement" {
    for_each = local.trust_ecs ? [1] : []
    content {
      sid     = "EcsTasks"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = ["ecs-tasks.amazonaws.com"]
      }
      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = ["arn:${data.aws_partition.current.partition}:ecs:*:${data.aws_caller_identity.current.account_id}:*"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = local.trust_auditor_role ? [1] : []
    content {
      sid     = "CentralAuditor"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "AWS"
        identifiers = [var.auditor_role_arn]
      }
    }
  }
}

data "aws_iam_policy_document" "permissions" {
  statement {
    sid       = "DescribeVpcNetworking"
    effect    = "Allow"
    actions   = local.ec2_read_actions
    resources = ["*"]
  }

  statement {
    sid       = "ReadIamRoles"
    effect    = "Allow"
    actions   = local.iam_read_actions
    resources = ["*"]
  }

  statement {
    sid       = "ReadRegistriesAndSecretNames"
    effect    = "Allow"
    actions   = local.registry_and_secret_read_actions
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(var.assumable_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeMemberAccountRoles"
      effect    = "Allow"
      actions   = ["sts:AssumeRole"]
      resources = var.assumable_role_arns
    }
  }

  # The Organization's accounts, for `organizations:` discovery; works only in the management
  # account or a delegated administrator account.
  dynamic "statement" {
    for_each = var.discover_organization_accounts ? [1] : []
    content {
      sid       = "ListOrganizationAccounts"
      effect    = "Allow"
      actions   = ["organizations:ListAccounts"]
      resources = ["*"]
    }
  }

  # The events queue, for `events:` (event-driven re-scans); that queue only.
  dynamic "statement" {
    for_each = var.events_queue_arn != "" ? [1] : []
    content {
      sid       = "ReadEventsQueue"
      effect    = "Allow"
      actions   = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
      resources = [var.events_queue_arn]
    }
  }
}

resource "aws_iam_role" "auditor" {
  name                 = var.role_name
  description          = "vpc-auditor (read-only audit of VPC networking and IAM roles)"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  permissions_boundary = var.permissions_boundary_arn
  tags                 = merge({ Application = "vpc-auditor" }, var.tags)

  lifecycle {
    precondition {
      condition     = !local.trust_eks || local.oidc_issuer != ""
      error_message = "trusted_by = \"${var.trusted_by}\" needs oidc_issuer."
    }
    precondition {
      condition     = !local.trust_auditor_role || var.auditor_role_arn != ""
      error_message = "trusted_by = \"auditor-role\" needs auditor_role_arn."
    }
  }
}

resource "aws_iam_role_policy" "read" {
  name   = "vpc-auditor-read"
  role   = aws_iam_role.auditor.id
  policy = data.aws_iam_policy_document.permissions.json
}

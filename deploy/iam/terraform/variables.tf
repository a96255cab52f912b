variable "role_name" {
  description = "The role's name."
  type        = string
  default     = "vpc-auditor"
}

variable "trusted_by" {
  description = <<-EOT
    Who may assume the role. eks-irsa: the Kubernetes service account below, through the
    cluster's OIDC provider. ecs-tasks: ECS tasks of this account (use the role as the task
    role). eks-irsa-and-ecs-tasks: both. auditor-role: the auditor's role in another account
    (auditor_role_arn), for a member account audited from a central one.
  EOT
  type        = string
  default     = "eks-irsa"

  validation {
    condition     = contains(["eks-irsa", "ecs-tasks", "eks-irsa-and-ecs-tasks", "auditor-role"], var.trusted_by)
    error_message = "trusted_by must be eks-irsa, ecs-tasks, eks-irsa-and-ecs-tasks or auditor-role."
  }
}

variable "oidc_issuer" {
  description = <<-EOT
    The EKS cluster's OIDC issuer, with or without https://, e.g.
    oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE (aws eks
    describe-cluster --query cluster.identity.oidc.issuer, or the cluster resource's
    identity[0].oidc[0].issuer). Its IAM OIDC provider must exist. Needed for eks-irsa.
  EOT
  type        = string
  default     = ""
}

variable "kubernetes_namespace" {
  description = "The namespace of the auditor's service account."
  type        = string
  default     = "vpc-auditor"
}

variable "kubernetes_service_account" {
  description = "The auditor's service account (deploy/kubernetes/base/serviceaccount.yaml)."
  type        = string
  default     = "vpc-auditor"
}

variable "auditor_role_arn" {
  description = "For trusted_by = auditor-role: the ARN of the auditor's role in the central account."
  type        = string
  default     = ""
}

variable "assumable_role_arns" {
  description = <<-EOT
    Roles in other accounts this role may assume to audit them (created there with
    trusted_by = auditor-role), e.g. ["arn:aws:iam::*:role/vpc-auditor-member"]. Empty: none.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.assumable_role_arns : startswith(arn, "arn:")])
    error_message = "assumable_role_arns must be role ARNs (patterns such as arn:aws:iam::*:role/vpc-auditor-member are fine), never \"*\"."
  }
}

variable "events_queue_arn" {
  description = "The events queue (deploy/events/, the config's events.queue_url): the role may receive, delete and read the attributes of messages on it, and on no other queue. Empty: none."
  type        = string
  default     = ""

  validation {
    condition     = var.events_queue_arn == "" || can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.events_queue_arn))
    error_message = "events_queue_arn is empty or an SQS queue ARN."
  }
}

variable "discover_organization_accounts" {
  description = "Let the auditor list the AWS Organization's accounts (organizations:ListAccounts) for the config's organizations: discovery; only useful in the management or a delegated administrator account."
  type        = bool
  default     = false
}

variable "permissions_boundary_arn" {
  description = "A permissions boundary to attach, if your organisation requires one."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}

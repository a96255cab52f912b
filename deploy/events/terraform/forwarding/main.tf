# Forwards the events vpc-auditor re-scans on from this account and region to the
# auditor's event bus: the same resources as
# deploy/events/member-forwarding.template.yaml in this repository.

locals {
  ec2_events = [
    "CreateRoute",
    "DeleteRoute",
    "ReplaceRoute",
    "CreateRouteTable",
    "DeleteRouteTable",
    "AssociateRouteTable",
    "DisassociateRouteTable",
    "ReplaceRouteTableAssociation",
    "CreateSubnet",
    "DeleteSubnet",
    "ModifySubnetAttribute",
    "CreateNatGateway",
    "DeleteNatGateway",
    "CreateInternetGateway",
    "DeleteInternetGateway",
    "AttachInternetGateway",
    "DetachInternetGateway",
    "CreateVpcEndpoint",
    "DeleteVpcEndpoints",
    "ModifyVpcEndpoint",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "ModifySecurityGroupRules",
    "CreateVpc",
    "DeleteVpc",
    "ModifyVpcAttribute",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
    "AssociateSubnetCidrBlock",
    "DisassociateSubnetCidrBlock",
  ]
  iam_events = [
    "CreateRole",
    "DeleteRole",
    "UpdateRole",
    "UpdateAssumeRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "DeletePolicy",
  ]
  all_rules = {
    ec2 = { source = "aws.ec2", event_source = "ec2.amazonaws.com", names = local.ec2_events }
    iam = { source = "aws.iam", event_source = "iam.amazonaws.com", names = local.iam_events }
  }
  # IAM's CloudTrail events arrive in us-east-1 only.
  rules = { for k, v in local.all_rules : k => v if k == "ec2" || data.aws_region.current.name == "us-east-1" }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "put_events" {
  statement {
    effect    = "Allow"
    actions   = ["events:PutEvents"]
    resources = [var.auditor_event_bus_arn]
  }
}

resource "aws_iam_role" "forward" {
  name_prefix        = "vpc-auditor-forward-"
  assume_role_policy = data.aws_iam_policy_document.trust.json
}

resource "aws_iam_role_policy" "forward" {
  name   = "put-events-on-the-auditor-bus"
  role   = aws_iam_role.forward.id
  policy = data.aws_iam_policy_document.put_events.json
}

resource "aws_cloudwatch_event_rule" "changes" {
  for_each    = local.rules
  name        = "vpc-auditor-${each.key}-forward"
  description = "Calls that change what vpc-auditor reads, to the auditor's event bus."
  event_pattern = jsonencode({
    source        = [each.value.source]
    "detail-type" = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = [each.value.event_source]
      eventName   = each.value.names
    }
  })
}

resource "aws_cloudwatch_event_target" "bus" {
  for_each  = local.rules
  rule      = aws_cloudwatch_event_rule.changes[each.key].name
  target_id = "vpc-auditor-bus"
  arn       = var.auditor_event_bus_arn
  role_arn  = aws_iam_role.forward.arn
}

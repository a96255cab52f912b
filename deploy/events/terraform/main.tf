# vpc-auditor's events queue: the same resources as deploy/events/events.template.yaml; the event
# names are src/events/mapping.rs's lists (tests/deploy_events.rs fails when they differ).

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
  rules = {
    ec2 = { source = "aws.ec2", event_source = "ec2.amazonaws.com", names = local.ec2_events }
    iam = { source = "aws.iam", event_source = "iam.amazonaws.com", names = local.iam_events }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.queue_name}-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "events" {
  name = var.queue_name
  # Longer than the debounce plus a scan.
  visibility_timeout_seconds = 300
  message_retention_seconds  = 345600
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_cloudwatch_event_rule" "changes" {
  for_each    = local.rules
  name        = "vpc-auditor-${each.key}"
  description = "Calls that change what vpc-auditor reads, to its events queue."
  event_pattern = jsonencode({
    source        = [each.value.source]
    "detail-type" = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = [each.value.event_source]
      eventName   = each.value.names
    }
  })
}

resource "aws_cloudwatch_event_target" "queue" {
  for_each  = local.rules
  rule      = aws_cloudwatch_event_rule.changes[each.key].name
  target_id = "vpc-auditor-events"
  arn       = aws_sqs_queue.events.arn
}

# Only this account's two rules may send to the queue.
data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "EventBridgeRules"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for rule in aws_cloudwatch_event_rule.changes : rule.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.queue.json
}

# Member accounts of the organization may put events on this account's default bus.
data "aws_iam_policy_document" "bus" {
  count = var.organization_id == "" ? 0 : 1
  statement {
    sid       = "VpcAuditorOrganization"
    effect    = "Allow"
    actions   = ["events:PutEvents"]
    resources = ["arn:${data.aws_partition.current.partition}:events:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:event-bus/default"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalOrgID"
      values   = [var.organization_id]
    }
  }
}

resource "aws_cloudwatch_event_bus_policy" "organization" {
  count  = var.organization_id == "" ? 0 : 1
  policy = data.aws_iam_policy_document.bus[0].json
}

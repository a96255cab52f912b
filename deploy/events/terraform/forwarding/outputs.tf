output "rule_arns" {
  description = "The forwarding rules."
  value       = [for rule in aws_cloudwatch_event_rule.changes : rule.arn]
}

output "queue_url" {
  description = "The config's events.queue_url."
  value       = aws_sqs_queue.events.id
}

output "queue_arn" {
  description = "The auditor role's events_queue_arn."
  value       = aws_sqs_queue.events.arn
}

output "dead_letter_queue_arn" {
  description = "Where messages whose re-scan kept failing end up."
  value       = aws_sqs_queue.dead_letter.arn
}

output "event_bus_arn" {
  description = "The event bus the forwarding module forwards to."
  value       = "arn:${data.aws_partition.current.partition}:events:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:event-bus/default"
}

variable "auditor_event_bus_arn" {
  description = "The auditor account's default event bus in the queue's region (the events module's event_bus_arn)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/default$", var.auditor_event_bus_arn))
    error_message = "auditor_event_bus_arn is the ARN of a default event bus."
  }
}

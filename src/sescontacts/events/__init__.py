"""Bounce and complaint events from SES: parsed (:mod:`.parse`), recorded once (:mod:`.log`), acted on by
each list's rules (:mod:`.rules`), and received from a file, an SQS queue or an SNS HTTPS subscription."""

"""`scorer notify`: the reference consumer of the alerts topic (the scorer's user).

It turns each alert into at most one notification: deduplicated by alert id in Redis, chosen by a
configurable policy (policy.py, texts in templates.py), held through the student's quiet hours
(quiet_hours.py), skipped for the holdout group, and sent to a webhook with retries (senders.py,
retry.py) or printed; what cannot be sent goes to the notify dead-letter topic. notifier.py holds
one alert's way through, consumer.py the Kafka loop, process.py the command.
"""

"""Amazon SQS adapters (boto3): publisher, consumer, queue directory and dead-letter admin."""

"""The queue's limits, in one place: Amazon SQS's quotas, which every queue adapter (SQS, the
SQL lease queue, the in-memory queue) enforces alike so a job that runs on one runs on all.

Sources (cited row by row in docs/providers.md): the Amazon SQS Developer Guide's message quotas
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html),
the API reference of ReceiveMessage, SendMessage(Batch) and ChangeMessageVisibility, and the 1 MiB
payload announcement (https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-services-now-support-payloads-up-to-1-mb).
"""

from __future__ import annotations

MAX_RECEIVE = 10  # messages per ReceiveMessage (MaxNumberOfMessages 1-10)
MAX_RECEIVE_COUNT = 1000  # the redrive policy's maxReceiveCount (1-1,000)
MAX_QUEUE_NAME_CHARS = 80  # a queue name: letters, digits, hyphens and underscores
MAX_BATCH = 10  # entries per SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch
MAX_WAIT_S = 20  # the longest long poll (WaitTimeSeconds 0-20)
MAX_DELAY_S = 900  # the longest delay of a message (DelaySeconds 0-900, 15 minutes)
MAX_VISIBILITY_TIMEOUT_S = 12 * 3600  # the longest visibility timeout (12 hours)
MAX_BODY_BYTES = 1024 * 1024  # one message body, and all the bodies of one batch (1 MiB)
MAX_RETENTION_S = 14 * 24 * 3600  # the longest message retention period (14 days)
# the reason a dead letter carries when it was received maxReceiveCount times (the redrive policy)
MAX_RECEIVE_REASON = "maxReceiveCount exceeded"

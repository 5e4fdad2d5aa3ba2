-- How many reads of the user were written. A read is written only over the revision it
-- began from: a read that another node's later read overtook (a lease that moved while
-- it ran) cannot put older bookings back.
ALTER TABLE users ADD COLUMN sync_revision BIGINT NOT NULL DEFAULT 0;

-- EWS push tokens get a column of their own: a Graph subscription id posted to the EWS
-- push endpoint (or a push token posted as a Graph subscription id) names nobody.
ALTER TABLE users ADD COLUMN push_token TEXT;
CREATE UNIQUE INDEX users_push_token ON users (push_token);

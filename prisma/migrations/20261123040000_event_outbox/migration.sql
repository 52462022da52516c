-- CreateTable
CREATE TABLE "event_outbox" (
    "seq" BIGINT NOT NULL,

    CONSTRAINT "event_outbox_pkey" PRIMARY KEY ("seq")
);

-- Events are numbered in commit order: a transaction takes the lock when it inserts its first event
-- and keeps it until it commits, so a reader that has seen seq N never later finds a new event
-- below N (GET /v1/events cursors and the event stream rely on it). Insert events last in a
-- transaction, as the activities do, so the lock is held only for the commit.
CREATE FUNCTION "domain_events_number_in_commit_order"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7270736902);
    NEW."seq" := nextval('domain_events_seq_seq');
    RETURN NEW;
END
$$;

CREATE TRIGGER "domain_events_number_in_commit_order" BEFORE INSERT ON "domain_events"
    FOR EACH ROW EXECUTE FUNCTION "domain_events_number_in_commit_order"();

-- Every new event joins the outbox (the RabbitMQ publisher empties it), and listeners on the
-- channel "domain_events" hear of it when the transaction commits (the API's event stream).
CREATE FUNCTION "domain_events_enqueue"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "event_outbox" ("seq") SELECT "seq" FROM "inserted";
    IF FOUND THEN
        PERFORM pg_notify('domain_events', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER "domain_events_enqueue" AFTER INSERT ON "domain_events"
    REFERENCING NEW TABLE AS "inserted"
    FOR EACH STATEMENT EXECUTE FUNCTION "domain_events_enqueue"();

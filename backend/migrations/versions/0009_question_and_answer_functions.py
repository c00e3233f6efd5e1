"""each question and each answer stored by one call on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

A question checks the budgets, stores itself and reserves tokens against them; an answer
stores itself and settles that reservation. Each used to be a transaction of five or six
round trips (BEGIN, the statements, COMMIT) holding the day's counter rows locked across
them, and every question and answer of the service updates the same counter row. As one
function call each is a transaction of its own: the locks last while PostgreSQL runs it,
not while the app's event loop gets round to the next statement (issue 18,
bench/PERFORMANCE.md). The app's `app/chat/repository.py` (`PostgresChat`) calls them;
SQLite runs the same steps as statements in a transaction (`MessageStore`), and the tests
run both.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The budgets are `Budgets.check`'s, in the same order; a limit of 0 means none (but not
# for the number of questions). Refused, it returns a NULL question id and what the
# budgets read, for the app to say which one is spent; nothing is stored then, except a
# day's counter rows created at 0.
CHAT_ASK = """
CREATE FUNCTION chat_ask(
    p_conversation uuid, p_client text, p_now timestamptz, p_day date,
    p_content text, p_tokens integer, p_reserve integer,
    p_max_questions integer, p_per_session bigint, p_per_client bigint, p_per_day bigint,
    OUT question_id bigint, OUT spent_questions integer, OUT spent_session bigint,
    OUT spent_client_today bigint, OUT spent_today bigint
) LANGUAGE plpgsql AS $$
BEGIN
    -- What the budgets read is locked in one order (the conversation, the service's
    -- counter, the client's) so that concurrent questions are checked one after the
    -- other, each seeing the reservations before it, and never wait for each other.
    SELECT c.question_count, c.tokens_used INTO spent_questions, spent_session
    FROM conversations AS c WHERE c.id = p_conversation FOR UPDATE;
    IF NOT FOUND THEN  -- a new conversation
        spent_questions := 0;
        spent_session := 0;
    END IF;
    INSERT INTO usage_counters (scope, key, day, tokens)
    VALUES ('service', 'all', p_day, 0), ('client', p_client, p_day, 0)
    ON CONFLICT DO NOTHING;
    SELECT u.tokens INTO spent_today FROM usage_counters AS u
    WHERE u.scope = 'service' AND u.key = 'all' AND u.day = p_day FOR UPDATE;
    SELECT u.tokens INTO spent_client_today FROM usage_counters AS u
    WHERE u.scope = 'client' AND u.key = p_client AND u.day = p_day FOR UPDATE;

    IF spent_questions >= p_max_questions
        OR (p_per_session > 0 AND spent_session >= p_per_session)
        OR (p_per_client > 0 AND spent_client_today >= p_per_client)
        OR (p_per_day > 0 AND spent_today >= p_per_day)
    THEN
        RETURN;  -- refused: question_id stays NULL
    END IF;

    -- Even a new session may be stored already: the contact form can store it first.
    INSERT INTO conversations AS c
        (id, client_key, question_count, tokens_used, created_at, updated_at)
    VALUES (p_conversation, p_client, 1, p_reserve, p_now, p_now)
    ON CONFLICT (id) DO UPDATE SET
        question_count = c.question_count + 1,
        tokens_used = c.tokens_used + p_reserve,
        updated_at = p_now;
    INSERT INTO messages (conversation_id, role, content, tokens, created_at, reserved_tokens)
    VALUES (p_conversation, 'user', p_content, p_tokens, p_now, p_reserve)
    RETURNING id INTO question_id;
    UPDATE usage_counters AS u SET tokens = u.tokens + p_reserve
    WHERE u.day = p_day
        AND ((u.scope = 'service' AND u.key = 'all') OR (u.scope = 'client' AND u.key = p_client));
END
$$
"""

# `save_answer` in app/chat/answers.py, as one call: the answer takes the place of the
# recovery sweep's placeholder but never of a real answer (then it returns NULL and
# changes nothing); the question's reservation is released once, and the conversation
# and the day's counters get what the answer cost instead.
CHAT_SETTLE = """
CREATE FUNCTION chat_settle(
    p_conversation uuid, p_client text, p_reply_to bigint, p_asked_on date,
    p_reserved integer, p_spent integer,
    p_content text, p_source text, p_tokens integer, p_created_at timestamptz,
    p_model text, p_finish_reason text, p_error_code text,
    p_prompt_tokens integer, p_completion_tokens integer,
    p_cached_tokens integer, p_cache_write_tokens integer,
    p_latency_ms integer, p_first_token_ms integer
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    answer_id bigint;
    change bigint := p_spent;
BEGIN
    INSERT INTO messages AS m (
        conversation_id, role, reply_to, content, source, tokens, created_at, model,
        finish_reason, error_code, prompt_tokens, completion_tokens, cached_tokens,
        cache_write_tokens, latency_ms, first_token_ms
    ) VALUES (
        p_conversation, 'assistant', p_reply_to, p_content, p_source, p_tokens, p_created_at,
        p_model, p_finish_reason, p_error_code, p_prompt_tokens, p_completion_tokens,
        p_cached_tokens, p_cache_write_tokens, p_latency_ms, p_first_token_ms
    )
    ON CONFLICT (reply_to) DO UPDATE SET
        content = excluded.content, source = excluded.source, tokens = excluded.tokens,
        created_at = excluded.created_at, model = excluded.model,
        finish_reason = excluded.finish_reason, error_code = excluded.error_code,
        prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
        cached_tokens = excluded.cached_tokens, cache_write_tokens = excluded.cache_write_tokens,
        latency_ms = excluded.latency_ms, first_token_ms = excluded.first_token_ms
    WHERE m.error_code = 'answer_interrupted'
    RETURNING m.id INTO answer_id;
    IF answer_id IS NULL THEN
        RETURN NULL;  -- its question has a real answer already
    END IF;

    UPDATE messages SET reserved_tokens = NULL
    WHERE id = p_reply_to AND reserved_tokens IS NOT NULL;
    IF FOUND THEN
        change := p_spent - p_reserved;
    END IF;
    -- A late answer (from the spool, or the sweep's placeholder) moves it no earlier.
    UPDATE conversations AS c
    SET tokens_used = c.tokens_used + change, updated_at = greatest(c.updated_at, p_created_at)
    WHERE c.id = p_conversation;
    IF change <> 0 THEN
        INSERT INTO usage_counters AS u (scope, key, day, tokens)
        VALUES ('service', 'all', p_asked_on, change), ('client', p_client, p_asked_on, change)
        ON CONFLICT (scope, key, day) DO UPDATE SET tokens = u.tokens + excluded.tokens;
    END IF;
    RETURN answer_id;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHAT_ASK)
        op.execute(CHAT_SETTLE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION chat_settle")
        op.execute("DROP FUNCTION chat_ask")

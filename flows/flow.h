/*
 * flow.h -- the flow language and its engine.
 *
 * A flow set is everything a dialogue needs to decide what the caller sees:
 * the flows (config/flows/NAME.conf), the lists they pick from
 * (config/lists/NAME.conf) and the system messages (config/messages.conf), all
 * loaded once with libconfig and then read-only.  Reloading builds a new set
 * and swaps the pointer; a set is never changed after flow_set_load().
 *
 * The engine is pure: flow_start(), flow_dial() and flow_step() read no clock,
 * do no I/O and allocate nothing.  The caller passes the time and 16 random
 * bytes in a struct flow_ctx, and owns every buffer.  The same inputs give the
 * same outputs, which is what the unit tests, the transcript tests and the
 * fuzzer rely on.
 *
 * Every screen the engine produces fits one page of its channel, measured in
 * the encoding it will be sent in (GSM 7-bit septets, or UTF-16 code units
 * when any character is outside the GSM alphabet, as all Bangla is).  Long
 * menus and long read-backs are split over pages with a "more" key.
 */
#ifndef FLOW_H
#define FLOW_H

#include <stddef.h>
#include <stdint.h>

#define FLOW_ID_MAX        32  /* flow, node, field, list, code ids */
#define FLOW_LANG_MAX      4   /* "en", "bn" */
#define FLOW_KEY_MAX       33  /* idempotency key: 32 hex digits */
#define FLOW_REF_MAX       12  /* reference number: 10 characters */
#define FLOW_VALUE_MAX     256 /* one stored answer, UTF-8 */
#define FLOW_INPUT_MAX     200 /* longest input accepted, bytes */
#define FLOW_ANSWERS_MAX   32
#define FLOW_HIST_MAX      40
#define FLOW_TEXT_MAX      2048 /* one screen, UTF-8 bytes */
#define FLOW_STATE_VERSION 1
#define FLOW_STATE_MAX     8192 /* longest serialised state */
#define FLOW_QUERY_MAX     64   /* letters typed to search a list, bytes */
#define FLOW_PARTS_MAX     8    /* flows one registration is cut into */

enum flow_err {
    FLOW_OK = 0,
    FLOW_ENOMEM = -1,  /* out of memory */
    FLOW_ECONFIG = -2, /* flow files did not load or lint */
    FLOW_ESTATE = -3,  /* serialised state is corrupt or foreign */
    FLOW_ENOFLOW = -4, /* no such flow, or state names a node that is gone */
    FLOW_EINPUT = -5,  /* input too long or not UTF-8 */
    FLOW_EDONE = -6,   /* the dialogue already ended */
};

const char *flow_strerror(int err);

enum flow_channel { FLOW_CH_USSD = 0, FLOW_CH_SMS = 1 };
enum flow_enc { FLOW_ENC_GSM7 = 0, FLOW_ENC_UCS2 = 1 };

const char *flow_channel_name(enum flow_channel ch);
int flow_channel_parse(const char *name, enum flow_channel *ch); /* 0 or -1 */
const char *flow_enc_name(enum flow_enc enc);                    /* gsm7|ucs2 */

/* ------------------------------------------------------------------------
 * Settings and loading
 */

/* Page limits of one channel.  For SMS the limit is for `parts` concatenated
 * parts (160/70 for one part, 153/67 per part when split). */
struct flow_page {
    unsigned gsm7; /* septets per screen */
    unsigned ucs2; /* UTF-16 code units per screen */
};

/* The clock of a USSD session, for the linter's model of a typical
 * dialogue (flow_clock.c): what a caller spends on each kind of screen
 * (reading it and answering), the network's round trip added to every
 * screen, and the session a part of a flow must fit in.  Milliseconds. */
struct flow_clock {
    unsigned menu_ms;       /* pick a number from a menu page: 6 s */
    unsigned number_ms;     /* type a number (a year, an ID number): 10 s */
    unsigned text_ms;       /* type free text (a name): 30 s */
    unsigned search_ms;     /* type the first letters of a name: 8 s */
    unsigned readback_ms;   /* read one page of a read-back: 6 s */
    unsigned round_trip_ms; /* the network, per screen: 1 s */
    unsigned budget_ms;     /* one session: 90 s */
};

/* What the loader needs from remigate.conf.  Paths are borrowed for the call
 * of flow_set_load() only. */
struct flow_settings {
    const char *flows_dir;     /* every *.conf in it is a flow */
    const char *lists_dir;     /* every *.conf in it is a list */
    const char *messages_file; /* system texts */
    const char *entry_ussd;    /* flow a new USSD dial starts (e.g. "main") */
    const char *entry_sms;     /* flow an SMS with no keyword starts */
    char key_back[8];          /* default "0" */
    char key_home[8];          /* default "00" */
    char key_more[8];          /* default "98" */
    unsigned max_tries;        /* wrong answers before a polite end; 3 */
    struct flow_page page[2];  /* indexed by enum flow_channel */
    int utc_offset;            /* seconds east of UTC for "this year"; 21600 */
    struct flow_clock clock;   /* for flow_clock_parts() */
};

/* Fill s with the defaults above (paths NULL). */
void flow_settings_default(struct flow_settings *s);

/* One diagnostic: "file:line: message".  line is 0 when unknown. */
struct flow_diag_item {
    char file[256];
    int line;
    char msg[256];
};

/* Diagnostics collected by the loader and linter.  Owned by the caller:
 * flow_diag_init() before use, flow_diag_fini() after. */
struct flow_diag {
    struct flow_diag_item *items;
    size_t n, cap;
};

void flow_diag_init(struct flow_diag *d);
void flow_diag_fini(struct flow_diag *d);
void flow_diag_add(struct flow_diag *d, const char *file, int line,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

struct flow_set; /* opaque, read-only once loaded */

/* Load and lint every file the settings name.  Returns a new set (caller
 * frees with flow_set_free()) or NULL; every problem found, in load or lint,
 * is appended to diag as file:line: message.  A set is returned only if diag
 * gained no errors. */
struct flow_set *flow_set_load(const struct flow_settings *s,
                               struct flow_diag *diag);
void flow_set_free(struct flow_set *set); /* NULL is a no-op */

/* The settings the set was loaded with (borrowed; paths are NULL). */
const struct flow_settings *flow_set_settings(const struct flow_set *set);

/* Does the set have this flow?  Flow ids of SMS keywords: flow_keyword(). */
int flow_exists(const struct flow_set *set, const char *flow_id);

/* The flow an SMS starting with this word starts, or NULL.  Matching is
 * case-insensitive and ignores surrounding spaces; Bangla keywords too.
 * Returns a borrowed flow id. */
const char *flow_keyword(const struct flow_set *set, const char *word);

/* The label of an answer's code (a list item or an inline option of the
 * node of flow flow_id that stores field, or of one of the flow's parts)
 * in lang, or in the first language that has it; NULL when no such node,
 * code or language.  Borrowed from set. */
const char *flow_answer_label(const struct flow_set *set, const char *flow_id,
                              const char *field, const char *code,
                              const char *lang);

/* A system message (messages.conf) in lang, or in the first language that
 * has it; never NULL (the id itself when unknown).  Borrowed. */
const char *flow_message(const struct flow_set *set, const char *lang,
                         const char *id);

/* One part of a flow on its typical path (flow_clock.c).  A part ends at
 * a read-back (a confirm node: the answers before it are saved there) or
 * where the flow ends or hands over to another flow.  The typical path
 * takes the first inline option of each menu (the way forward: "yes",
 * the first kind of ID), the middle item of each list (a caller's
 * district is anywhere in it: the pages up to the middle are read, or,
 * where the list can be searched, its first three letters are typed and
 * the matches picked from unless there is only one),
 * reads every page of a multi, skips what a skip_if_set node already
 * knows (the language chosen in the main menu), and answers each input
 * once, right. */
struct flow_part_time {
    const char *flow; /* borrowed from the set */
    const char *file;
    const char *lang;
    int line;         /* of the node that ends the part */
    unsigned part;    /* 1-based */
    unsigned nparts;  /* in this flow, for this language */
    unsigned screens; /* screens the caller answers */
    unsigned ms;      /* modelled time, round trips included */
    unsigned menus, numbers, texts, searches, readbacks; /* screens by kind */
};

typedef void flow_part_cb(const struct flow_part_time *t, void *arg);

/* Call cb once for each part of each flow that runs on USSD, in each of
 * its languages, in the order of the flows, languages and parts.  Returns
 * how many parts are over the clock's budget. */
unsigned flow_clock_parts(const struct flow_set *set, flow_part_cb *cb,
                          void *arg);

/* ------------------------------------------------------------------------
 * Actions and their fields: the record contract (flow_action.c)
 *
 * One table says what each action of an end node takes, field by field:
 * its name in the record, its type, whether it is personal (a name, an ID
 * number) and whether the action needs it.  The linter holds every flow
 * to it (a flow that ends in an action may hold only fields the action
 * knows, with the type and the personal mark it declares, and must hold
 * every field the action requires) and the store keeps each field by it
 * (ID numbers encrypted with a keyed hash beside them, other personal
 * fields encrypted), so what is encrypted follows the declaration, not the
 * name a flow gives its field.  A flow's field feeds the action field of
 * the same name, or the one its node names with store_as; the record
 * (flow_record_json()) carries the action's names.
 */

/* Types of an action field: X(NAME, "name in messages") */
#define FLOW_FTYPES(X)                                                         \
    X(TEXT, "text")         /* free text (input: name, regex, phone) */        \
    X(CODE, "code")         /* one code of a menu or list */                   \
    X(INT, "int")           /* a number (input: year, age, number) */          \
    X(CODES, "codes")       /* codes of a multi node, an array */              \
    X(NID, "nid")           /* national ID number (input: nid) */              \
    X(PASSPORT, "passport") /* passport number (input: passport) */            \
    X(ID, "id") /* either, as typed (input: id); stored as the one it is */

enum flow_ftype {
#define FLOW_X_FT(name, text) FLOW_FT_##name,
    FLOW_FTYPES(FLOW_X_FT)
#undef FLOW_X_FT
        FLOW_FT__N
};

/* The actions an end node may name. */
#define FLOW_ACTIONS(X)                                                        \
    X(submit_registration)                                                     \
    X(submit_part)                                                             \
    X(update_skills)                                                           \
    X(status_lookup)                                                           \
    X(notices_set)

/* X(action, field, type, personal, required): every field an action
 * takes.  An action with no row takes no answers. */
#define FLOW_ACTION_FIELDS(X)                                                  \
    X(submit_registration, consent, CODE, 0, 0)                                \
    X(submit_registration, name, TEXT, 1, 1)                                   \
    X(submit_registration, sex, CODE, 0, 0)                                    \
    X(submit_registration, birth_year, INT, 0, 0)                              \
    X(submit_registration, division, CODE, 0, 0)                               \
    X(submit_registration, district, CODE, 0, 1)                               \
    X(submit_registration, country, CODE, 0, 0)                                \
    X(submit_registration, years_abroad, INT, 0, 0)                            \
    X(submit_registration, return_year, INT, 0, 0)                             \
    X(submit_registration, reason, CODE, 0, 0)                                 \
    X(submit_registration, education, CODE, 0, 0)                              \
    X(submit_registration, skills, CODES, 0, 0)                                \
    X(submit_registration, need, CODE, 0, 0)                                   \
    X(submit_registration, id_type, CODE, 0, 0)                                \
    X(submit_registration, nid, NID, 1, 0)                                     \
    X(submit_registration, passport, PASSPORT, 1, 0)                           \
    X(submit_registration, id_number, ID, 1, 0)                                \
    X(submit_part, country, CODE, 0, 0)                                        \
    X(submit_part, years_abroad, INT, 0, 0)                                    \
    X(submit_part, return_year, INT, 0, 0)                                     \
    X(submit_part, reason, CODE, 0, 0)                                         \
    X(submit_part, education, CODE, 0, 0)                                      \
    X(submit_part, skills, CODES, 0, 0)                                        \
    X(submit_part, need, CODE, 0, 0)                                           \
    X(update_skills, skills, CODES, 0, 1)                                      \
    X(notices_set, notices, CODE, 0, 1) /* "off" or "on" */

struct flow_afield {
    const char *action;
    const char *field; /* its name in the record */
    enum flow_ftype type;
    int personal; /* kept encrypted; masked when read back */
    int required; /* a flow ending in the action must hold it */
};

/* The table above, ended by a row whose action is NULL. */
extern const struct flow_afield flow_afields[];

/* Is action one of FLOW_ACTIONS? */
int flow_action_known(const char *action);

/* The row of action's field, or NULL.  Borrowed (static). */
const struct flow_afield *flow_afield_find(const char *action,
                                           const char *field);

/* "text", "code", ... */
const char *flow_ftype_name(enum flow_ftype t);

/* Is t an ID number (encrypted with a keyed hash for duplicates)? */
int flow_ftype_is_id(enum flow_ftype t);

/* Write value as a read-back shows it to someone who may not be the
 * person who typed it: an ID number (type) keeps its last 3 characters,
 * the rest '*'; any other personal value is "***".  out gets a
 * NUL-terminated text of at most cap bytes. */
void flow_mask(enum flow_ftype type, const char *value, char *out, size_t cap);

/* ------------------------------------------------------------------------
 * Dialogue state
 */

struct flow_answer {
    char field[FLOW_ID_MAX];
    char value[FLOW_VALUE_MAX]; /* list of codes for multi: "a,b,c" */
};

/* The state of one dialogue.  Plain data, no pointers: copy it with '=',
 * keep it on the stack, serialise it with flow_state_encode(). */
struct flow_state {
    char flow[FLOW_ID_MAX]; /* flow now running */
    char node[FLOW_ID_MAX]; /* node now shown */
    char home[FLOW_ID_MAX]; /* flow the dialogue began in ("main menu") */
    char lang[FLOW_LANG_MAX];
    char key[FLOW_KEY_MAX]; /* idempotency key, minted at flow start */
    char why[FLOW_ID_MAX];  /* message id of the last wrong answer, or "" */
    unsigned channel;       /* enum flow_channel */
    unsigned step;          /* bumped by every screen shown; CAS counter */
    unsigned page;          /* page of the node now shown */
    unsigned tries;         /* wrong answers at this node */
    unsigned flags;         /* FLOW_SF_* */
    int64_t started;        /* unix time the flow started */
    int64_t updated;        /* unix time of the last step */
    unsigned nhist;
    char hist[FLOW_HIST_MAX][FLOW_ID_MAX]; /* nodes answered, for "back" */
    unsigned nanswers;
    struct flow_answer answers[FLOW_ANSWERS_MAX];
    char query[FLOW_QUERY_MAX]; /* with FLOW_SF_FOUND: the letters typed */
    unsigned parts; /* bit i: part i of the set's parts is saved; kept
                       across flows (flow_part_mark) */
};

#define FLOW_SF_DONE     0x01u  /* the dialogue ended */
#define FLOW_SF_EDIT     0x02u  /* answering an edit from a confirm node */
#define FLOW_SF_RESUME   0x04u  /* the resume question is on screen */
#define FLOW_SF_EDITPICK 0x08u  /* the "which answer to change" menu is on */
#define FLOW_SF_LANG     0x10u  /* the caller chose (or was given) a language */
#define FLOW_SF_RESUMED  0x20u  /* resumed after a redial: read-backs mask */
#define FLOW_SF_SEARCH   0x40u  /* a search menu asks for first letters */
#define FLOW_SF_FOUND    0x80u  /* a search menu shows the matches of query */
#define FLOW_SF_NEXTPART 0x100u /* the offer of the next part is on screen */
/* the only match of a search was taken: the screen after it says which */
#define FLOW_SF_TOOK 0x200u

/* Serialise st into buf (NUL-terminated).  Returns the length, or -1 if it
 * does not fit in cap.  The format is versioned text, see flow_state.c. */
int flow_state_encode(const struct flow_state *st, char *buf, size_t cap);

/* Parse a serialised state.  Returns 0, or FLOW_ESTATE for anything corrupt,
 * truncated, of another version or not ours; st is then zeroed. */
int flow_state_decode(struct flow_state *st, const char *buf, size_t len);

/* Answer lookup: the value, or NULL.  Borrowed from st. */
const char *flow_state_get(const struct flow_state *st, const char *field);

/* ------------------------------------------------------------------------
 * The engine
 */

/* What the caller knows that the engine must not look up itself. */
struct flow_ctx {
    int64_t now;             /* unix time */
    unsigned char nonce[16]; /* random; used to mint idempotency keys */
    /* flow_dial(): a dial within this many seconds of the last step goes
     * straight back to the unanswered question; later (or 0) the caller
     * is asked whether to continue */
    unsigned resume_window;
};

/* One screen to send. */
struct flow_out {
    char text[FLOW_TEXT_MAX]; /* UTF-8, lines separated by '\n' */
    size_t len;
    int done; /* 1: the dialogue ends with this screen */
    enum flow_enc enc;
    unsigned used, limit; /* units used / page limit, in enc */
    const char *action;   /* end node's action (borrowed) or NULL */
};

/* Start flow_id afresh for a caller (lang may be NULL or "" for the flow's
 * default; channel decides the page size).  st is overwritten. */
int flow_start(const struct flow_set *set, struct flow_state *st,
               const char *flow_id, const char *lang, enum flow_channel channel,
               const struct flow_ctx *ctx, struct flow_out *out);

/* A new dialogue from a caller whose saved state is st (zeroed if none):
 * an unfinished flow goes on at its unanswered question (within
 * ctx->resume_window of the last step) or is offered to resume; else a
 * registration with parts still to do offers the next one ("2 of 3");
 * else the channel's entry flow (or flow_id when not NULL) starts in the
 * caller's last language.  The parts done are kept in every case. */
int flow_dial(const struct flow_set *set, struct flow_state *st,
              const char *flow_id, enum flow_channel channel,
              const struct flow_ctx *ctx, struct flow_out *out);

/* Parts: a flow may name the flows a registration is cut into
 * (parts = [ ... ] in its file; each part ends with something saved).
 * flow_part_mark() records that st's flow, a part, was saved (the caller
 * calls it once the part's action has kept the record); returns its
 * number (1-based) or 0 when st's flow is not a part.  flow_part_next()
 * gives the first part not saved yet, once the first one is, with its
 * number and the number of parts; NULL when there is none to offer. */
unsigned flow_part_mark(const struct flow_set *set, struct flow_state *st);
/* The number (1-based) of flow flow_id among the set's parts, or 0 when it
 * is not a part. */
unsigned flow_part_num(const struct flow_set *set, const char *flow_id);
/* The part of a registration st leaves to do: the part under way (a part
 * flow with answers, not ended), else the one flow_part_next() gives.  Its
 * number (1-based), or 0 when there is none; *total gets the parts'
 * number.  For the reminder SMS. */
unsigned flow_part_todo(const struct flow_set *set, const struct flow_state *st,
                        unsigned *total);
const char *flow_part_next(const struct flow_set *set,
                           const struct flow_state *st, unsigned *n,
                           unsigned *total);

/* Apply one input (UTF-8, as typed) to st and render the next screen.
 * Wrong answers re-ask with a reason; navigation keys move back, home or to
 * the next page.  Returns 0, or FLOW_EDONE / FLOW_ENOFLOW / FLOW_EINPUT
 * (out then holds a polite end screen and st is marked done). */
int flow_step(const struct flow_set *set, struct flow_state *st,
              const char *input, size_t len, const struct flow_ctx *ctx,
              struct flow_out *out);

/* Render the screen of st again (the reply to a duplicate request). */
int flow_render(const struct flow_set *set, const struct flow_state *st,
                struct flow_out *out);

/* Render the end screen of a finished dialogue again, with {ref} and other
 * {name} placeholders filled from vars ("name=value" strings, NULL ended),
 * then from the answers.  Used by the gateway after it has run the action. */
int flow_render_end(const struct flow_set *set, const struct flow_state *st,
                    const char *const *vars, struct flow_out *out);

/* A whole screen of a system message in lang, fitted to the channel (for
 * "service busy" and the like).  out->done is set. */
void flow_render_message(const struct flow_set *set, const char *lang,
                         enum flow_channel channel, const char *id,
                         struct flow_out *out);
/* The same with {name} placeholders filled from vars ("name=value", NULL
 * ended), e.g. saved_queued's {ref}. */
void flow_render_message_vars(const struct flow_set *set, const char *lang,
                              enum flow_channel channel, const char *id,
                              const char *const *vars, struct flow_out *out);

/* The record a finished flow hands to its action, as one line of JSON:
 * {"flow":..,"action":..,"key":..,"ref":..,"lang":..,"channel":..,
 *  "msisdn":..,"started":..,"answers":{..}}, each answer under the name of
 * the action's field it feeds (store_as, else the flow's field name).
 * Only answers on the path the
 * caller actually took are included; multi answers are arrays.  msisdn may
 * be NULL.  Returns the length, or -1 if it does not fit. */
int flow_record_json(const struct flow_set *set, const struct flow_state *st,
                     const char *msisdn, char *buf, size_t cap);

/* The short reference a returnee can quote: 10 characters of Crockford
 * base32 from the idempotency key.  buf must hold FLOW_REF_MAX. */
void flow_ref_from_key(const char *key, char *buf);

/* ------------------------------------------------------------------------
 * Text: encodings, page fitting, normalisation (flow_text.c)
 */

/* Measure UTF-8 text as it would be sent: GSM 7-bit when every character
 * is in the GSM 03.38 default alphabet or its extension table (those count
 * 2 septets), else UCS-2 (UTF-16 code units).  Invalid UTF-8 counts as
 * UCS-2 with one unit per byte. */
void flow_text_measure(const char *s, size_t len, enum flow_enc *enc,
                       unsigned *units);

/* Page limit for enc on this set's channel. */
unsigned flow_page_limit(const struct flow_set *set, enum flow_channel ch,
                         enum flow_enc enc);

/* Is s valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
int flow_utf8_valid(const char *s, size_t len);

/* Normalise one input: drop zero-width spaces (U+200B, U+2060, U+FEFF)
 * everywhere, trim white space and ZWJ/ZWNJ at both ends, collapse inner
 * white space runs to one space, turn Bangla digits (U+09E6..U+09EF) into
 * ASCII when digits is non-zero.  Writes a NUL-terminated result; returns
 * its length, or -1 if the input is not UTF-8 or does not fit. */
int flow_text_normalise(const char *in, size_t len, int digits, char *out,
                        size_t cap);

/* ------------------------------------------------------------------------
 * Validators (flow_valid.c)
 */

/* Parameters of a validator as written in a flow file. */
struct flow_vparam {
    long min, max; /* range; for year: relative to this year */
    int have_min, have_max;
    const char *regex; /* for "regex"; borrowed */
};

/* Check input (already normalised with digits) against the named validator.
 * Returns NULL when valid and writes the canonical value to out; otherwise
 * returns the id of the messages.conf entry that says why (e.g.
 * "invalid_name").  year is the current year.  Unknown name: "invalid". */
const char *flow_validate(const char *name, const struct flow_vparam *p,
                          const char *in, int year, char *out, size_t cap);

/* Is name a known validator? */
int flow_validator_known(const char *name);

#endif

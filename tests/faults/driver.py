#!/usr/bin/env python3
"""tests/faults/driver.py -- the fault suite's closed-loop caller and its
ledger check (standard library only).

  driver.py drive URL LEDGER PREFIX CALLERS STOPFILE
      CALLERS threads, each registering (part 1, in English) one new
      number after another over POST URL (/ussd/at), closed loop: the next
      step goes when the last one is answered.  Numbers are PREFIX (7
      digits, 8801...) followed by 6 digits.  Each attempt ends in one line
      of LEDGER (JSON): msisdn, outcome, ref, step (the last one sent,
      0-based), ms (latency of every step), t0/t1 (epoch seconds).
      Outcomes, from the last reply:
        saved      "Part 1 of 3 saved ... reference R"
        queued     "Received ... reference R" (PostgreSQL was slow or down:
                   the record waits in the Redis queue; the caller was told R)
        saving     "Still saving your answers" (the request's deadline came
                   while the record's write was in flight: stored or not is
                   not known yet; counted with no_answer's rows)
        try_later  "could not save your answers now"
        busy       "Service busy"
        lost       "we lost your answers"
        http_NNN   a status other than 200
        no_answer  no reply: connection refused or reset, or no reply in
                   30 s (the step may or may not have been applied); the
                   caller dials again 0.2 s later, as after any outcome
                   but saved or queued
        other      any other END screen, or a screen other than the one
                   expected (its text in "text")
      Stops between two steps once STOPFILE exists (the attempt is written
      as "abandoned": its last step was answered, its confirming answer
      never sent).  Each line also says which caller (thread, 0-based)
      made the attempt: "caller".

  driver.py busy LEDGER SINCE
      How often each caller heard "busy" (or another "not saved" answer)
      in attempts that ended after SINCE (epoch seconds, e.g. a failover's
      promotion): prints "busy_after_max=N busy_after=N busy_before_max=N
      busy_max=N" (the most any one caller heard after SINCE, all of them
      after, the most any one caller heard before, the most any one caller
      heard in all).

  driver.py tally LEDGER ROWS DEADLINE_MS
      ROWS: "msisdn|ref" lines of every returnees row under the ledger's
      numbers (as psql -At prints them).  Prints one line of key=value
      figures; the suite asserts on them.
"""

import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse

REF = re.compile(r"\b([0-9A-Z]{10})\b")
# the caller's answers after the first (empty) step: English, Register,
# consent, name, sex, birth year, district by its first letters, NID,
# confirm (the read-back fits one page in English)
ANSWERS = ["2", "1", "1", "Rahima Begum", "2", "1990", "Farid", None, "1"]


def classify(status, body):
    if status != 200:
        return "http_%d" % status, None
    if body.startswith("CON "):
        return "con", None
    m = REF.search(body)
    # the dialogue is in English, but a caller whose session is gone (Redis
    # lost it, or is not answering) is answered in the default, Bangla
    # (the queued text also says "saved. Your reference is")
    for queued in ("END Received.", "জমা হলে SMS পাবেন"):
        if queued in body and m:
            return "queued", m.group(1)
    for saved in ("END Part 1 of 3 saved.", "১ম অংশ জমা হলো"):
        if saved in body and m:
            return "saved", m.group(1)
    for outcome, texts in (
            ("saving", ("Still saving your answers", "উত্তর জমা হচ্ছে")),
            ("try_later", ("could not save your answers", "জমা করা যায়নি")),
            ("busy", ("Service busy", "লাইন এখন ব্যস্ত")),
            ("lost", ("lost your answers", "উত্তরগুলো হারিয়ে গেছে"))):
        if any(t in body for t in texts):
            return outcome, None
    return "other", None


class Driver:
    def __init__(self, url, ledger, prefix, stopfile):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port, u.path
        self.ledger = open(ledger, "a", buffering=1)
        self.prefix = prefix
        self.stopfile = stopfile
        self.lock = threading.Lock()
        self.next = 0

    def stopped(self):
        return os.path.exists(self.stopfile)

    def number(self):
        with self.lock:
            self.next += 1
            return self.next

    def write(self, rec):
        with self.lock:
            self.ledger.write(json.dumps(rec) + "\n")

    def post(self, conn, form):
        body = urllib.parse.urlencode(form)
        conn.request("POST", self.path, body,
                     {"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")

    def caller(self, k):
        conn = None
        while not self.stopped():
            n = self.number()
            msisdn = "%s%06d" % (self.prefix, n)
            nid = "%d%09d" % (1 + n % 9, int(self.prefix[-2:]) * 10000000 + n)
            rec = {"msisdn": msisdn, "outcome": None, "ref": None, "step": 0,
                   "ms": [], "t0": time.time(), "caller": k}
            text = ""
            answers = [""] + [a if a is not None else nid for a in ANSWERS]
            for i, a in enumerate(answers):
                if i > 0 and self.stopped():
                    rec["outcome"] = "abandoned"
                    break
                if i > 0:
                    text = text + "*" + a if text else a
                form = {"sessionId": "f" + msisdn, "serviceCode": "*247#",
                        "phoneNumber": msisdn, "text": text}
                rec["step"] = i
                t = time.monotonic()
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(
                            self.host, self.port, timeout=30)
                    status, body = self.post(conn, form)
                except (OSError, http.client.HTTPException):
                    rec["ms"].append(round((time.monotonic() - t) * 1000, 1))
                    rec["outcome"] = "no_answer"
                    if conn is not None:
                        conn.close()
                    conn = None
                    break
                rec["ms"].append(round((time.monotonic() - t) * 1000, 1))
                outcome, ref = classify(status, body)
                last = i == len(answers) - 1
                if outcome == "con" and not last:
                    continue
                if outcome == "con":
                    outcome = "other"
                rec["outcome"], rec["ref"] = outcome, ref
                if outcome == "other":
                    rec["text"] = body[:160]
                break
            rec["t1"] = time.time()
            self.write(rec)
            if rec["outcome"] not in ("saved", "queued", "abandoned"):
                # a caller told to try again dials again a moment later
                time.sleep(0.2)
        if conn is not None:
            conn.close()


def drive(url, ledger, prefix, callers, stopfile):
    d = Driver(url, ledger, prefix, stopfile)
    threads = [threading.Thread(target=d.caller, args=(k,))
               for k in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


def tally(ledger, rows, deadline_ms):
    recs = [json.loads(line) for line in open(ledger) if line.strip()]
    rowlist = [line.rstrip("\n").split("|") for line in open(rows)
               if line.strip()]
    byno = {}
    for msisdn, ref in rowlist:
        byno.setdefault(msisdn, []).append(ref)
    refs = {}
    for _, ref in rowlist:
        refs[ref] = refs.get(ref, 0) + 1
    told = [r for r in recs if r["outcome"] in ("saved", "queued")]
    # answered "not saved" in so many words: such a caller must have no row
    said_not = [r for r in recs
                if r["outcome"] in ("try_later", "busy", "lost")
                or r["outcome"].startswith("http_")]
    ms = sorted(m for r in recs for m in r["ms"])
    # a step reset at once (the daemon killed) is not late; one that got
    # no reply in time is
    late = sum(1 for m in ms if m > deadline_ms)
    f = {
        "callers": len(recs),
        "saved": sum(1 for r in recs if r["outcome"] == "saved"),
        "queued": sum(1 for r in recs if r["outcome"] == "queued"),
        "try_later": sum(1 for r in recs if r["outcome"] == "try_later"),
        "busy": sum(1 for r in recs if r["outcome"] in ("busy", "lost")
                    or r["outcome"].startswith("http_")),
        "no_answer": sum(1 for r in recs if r["outcome"] == "no_answer"),
        "saving": sum(1 for r in recs if r["outcome"] == "saving"),
        "other": sum(1 for r in recs if r["outcome"] == "other"),
        "abandoned": sum(1 for r in recs if r["outcome"] == "abandoned"),
        "rows": len(rowlist),
        "missing": sum(1 for r in told if r["msisdn"] not in byno),
        "wrong_ref": sum(1 for r in told if r["msisdn"] in byno
                         and byno[r["msisdn"]] != [r["ref"]]),
        "dup_msisdn": sum(1 for v in byno.values() if len(v) > 1),
        "dup_ref": sum(1 for v in refs.values() if v > 1),
        "row_said_not": sum(1 for r in said_not if r["msisdn"] in byno),
        "row_unknown": sum(1 for r in recs
                           if r["outcome"] in ("no_answer", "saving")
                           and r["msisdn"] in byno),
        "steps": len(ms),
        "late": late,
        "max_ms": int(ms[-1]) if ms else 0,
        "p99_ms": int(ms[min(len(ms) - 1, int(len(ms) * 0.99))]) if ms else 0,
    }
    # the outage as the callers saw it: from the first attempt not saved
    # to the end of the last one
    bad = [r for r in recs if r["outcome"] not in ("saved", "queued",
                                                   "abandoned")]
    f["outage_ms"] = int((max(r["t1"] for r in bad) -
                          min(r["t0"] for r in bad)) * 1000) if bad else 0
    others = [r.get("text", "") for r in recs if r["outcome"] == "other"]
    print(" ".join("%s=%d" % kv for kv in f.items()))
    for t in others[:3]:
        print("# other screen: %r" % t, file=sys.stderr)
    return 0


def busy(ledger, since):
    recs = [json.loads(line) for line in open(ledger) if line.strip()]
    after, before = {}, {}
    for r in recs:
        if r["outcome"] in ("busy", "try_later", "lost") or \
                r["outcome"].startswith("http_"):
            d = after if r["t1"] >= since else before
            d[r.get("caller", -1)] = d.get(r.get("caller", -1), 0) + 1
    every = {k: after.get(k, 0) + before.get(k, 0)
             for k in set(after) | set(before)}
    print("busy_after_max=%d busy_after=%d busy_before_max=%d busy_max=%d" % (
        max(after.values(), default=0), sum(after.values()),
        max(before.values(), default=0), max(every.values(), default=0)))
    return 0


def main(argv):
    if len(argv) == 7 and argv[1] == "drive":
        return drive(argv[2], argv[3], argv[4], int(argv[5]), argv[6])
    if len(argv) == 4 and argv[1] == "busy":
        return busy(argv[2], float(argv[3]))
    if len(argv) == 5 and argv[1] == "tally":
        return tally(argv[2], argv[3], float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

// peer.js -- part 1 of remigate's registration flow on ussd-menu-builder
// (Express, sessions in Redis), answering POST /ussd/at like remigate does:
// the peer the benchmark measures remigate against.  Same questions in the
// same order, the same number of steps (language, main menu, consent, name,
// sex, birth year, the district's first letters, the ID number, a read-back
// over two pages, confirm), answers checked the way a menu would; the
// finished record is pushed onto a Redis list.  (Figures in RESULTS.md
// before 2026-12-02 are for the earlier one-flow registration of 24 steps.)
//
//   node peer.js PORT REDIS_PORT
//
// ussd-menu-builder keeps the request's arguments and callback on the menu
// object, so a menu is built per request (one shared menu mixes up
// concurrent requests).
'use strict';
const express = require('express');
const redis = require('redis');
const UssdMenu = require('ussd-menu-builder');

const port = Number(process.argv[2] || 8090);
const rport = Number(process.argv[3] || 6379);
const db = redis.createClient({ socket: { host: '127.0.0.1', port: rport } });
const TTL = 180;

const num = (lo, hi) => (v) => /^\d+$/.test(v) && +v >= lo && +v <= hi;
const year = (v) => /^[0-9০-৯]{4}$/.test(v);
const name = (v) => /^[\p{L}\p{M} .'-]{2,60}$/u.test(v) && /\p{L}/u.test(v);
const nid = (v) => /^[0-9০-৯]{10}$|^[0-9০-৯]{13}$|^[0-9০-৯]{17}$/.test(v);
const yes = (v) => v === '1';
const letters = (v) => /^\p{L}[\p{L}\p{M} .'-]{0,40}$/u.test(v);
const idnum = (v) => nid(v) || /^[A-Za-z]{1,2}[0-9]{7,8}$/.test(v);

// field, question, check
const questions = [
  ['lang', 'Choose a language\n1. Bangla\n2. English', num(1, 2)],
  ['service', 'What do you want to do?\n1. Register\n2. Update my skills\n3. Check my status\n4. Help', num(1, 1)],
  ['consent', 'The government keeps your answers to offer you jobs, loans and training.\n1. Yes, I agree\n2. No', yes],
  ['name', 'Please write your full name.', name],
  ['sex', 'Are you male or female?\n1. Male\n2. Female\n3. Other', num(1, 3)],
  ['birth_year', 'In which year were you born? Like 1990', year],
  ['district', 'Which district do you live in? Write its first letters', letters],
  ['id_number', 'Please write your NID number, or your passport number.', idnum],
];
const PAGES = 2;

function build(req, res) {
  const menu = new UssdMenu();
  const key = (sid) => `peer:s:${sid}`;
  menu.sessionConfig({
    start: (sid) => db.expire(key(sid), TTL).then(() => undefined),
    end: (sid) => db.del(key(sid)).then(() => undefined),
    get: (sid, k) => db.hGet(key(sid), k),
    set: (sid, k, v) => db.hSet(key(sid), k, v).then(() => db.expire(key(sid), TTL)).then(() => undefined),
  });
  const save = (field) => field ? menu.session.set(field, menu.val) : Promise.resolve();

  questions.forEach(([field, text, check], i) => {
    const prev = i > 0 ? questions[i - 1][0] : null;
    const nextState = i + 1 < questions.length ? `q${i + 1}` : 'page0';
    menu.state(i === 0 ? '__start__' : `q${i}`, {
      run: () => { save(prev).then(() => menu.con(text)); },
      next: { [`*^.+$`]: (cb) => cb(check(menu.val) ? nextState : 'invalid') },
    });
  });
  for (let p = 0; p < PAGES; p++) {
    menu.state(`page${p}`, {
      run: () => {
        const first = p === 0 ? save('id_number') : Promise.resolve();
        first.then(() => db.hGetAll(key(menu.args.sessionId))).then((a) => {
          const lines = Object.keys(a).slice(p * 4, p * 4 + 4).map((k) => `${k}: ${a[k]}`);
          menu.con(`Please check your answers:\n${lines.join('\n')}\n` +
                   (p + 1 < PAGES ? '98. More' : '1. Confirm\n2. Change'));
        });
      },
      next: p + 1 < PAGES ? { '98': `page${p + 1}` } : { '1': 'submit' },
      defaultNext: 'invalid',
    });
  }
  menu.state('submit', {
    run: () => {
      db.hGetAll(key(menu.args.sessionId))
        .then((a) => db.rPush('peer:queue:records', JSON.stringify({ msisdn: menu.args.phoneNumber, answers: a })))
        .then(() => menu.end('Thank you. Your reference is PEER000000. An officer will check it and send you an SMS.'));
    },
  });
  menu.state('invalid', { run: () => menu.end('Sorry, that is not a valid answer. Please dial again.') });
  menu.on('error', (err) => { res.status(500).send(`END ${err.message}`); });
  menu.run(req.body, (msg) => res.type('text/plain').send(msg));
}

db.connect().then(() => {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.post('/ussd/at', build);
  app.listen(port, '127.0.0.1', () => console.log(`peer listening on ${port}`));
});

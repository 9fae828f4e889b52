// tests/lib/fake_sendsms.js -- a stand-in for Kannel smsbox's sendsms for
// integration tests that need to see what the daemon sent: node
// fake_sendsms.js PORT_FILE LOG_FILE.  Listens on a free loopback port
// (written to PORT_FILE), answers every POST 202 "0: Accepted for
// delivery" as Kannel does, and appends one line per request to LOG_FILE:
// "to<TAB>coding<TAB>dlr-url<TAB>text" (the text with newlines as \n).
// No dependencies beyond node itself.
'use strict';
const http = require('http');
const fs = require('fs');
const [portFile, logFile] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8').replace(/\n/g, '\\n');
    const h = req.headers;
    fs.appendFileSync(logFile, [h['x-kannel-to'] || '', h['x-kannel-coding'] || '',
      h['x-kannel-dlr-url'] || '', text].join('\t') + '\n');
    res.writeHead(202, { 'Content-Type': 'text/plain' });
    res.end('0: Accepted for delivery');
  });
});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(portFile + '.tmp', String(server.address().port));
  fs.renameSync(portFile + '.tmp', portFile);
});
process.on('SIGTERM', () => process.exit(0));

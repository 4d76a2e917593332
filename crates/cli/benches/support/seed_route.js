// A landing page's registration route as teams write it before g2w: the access token
// from the environment, and one call to GoTo per visitor while the visitor waits. The
// intake benchmark measures it beside `g2w serve` (Node's own http module, no
// framework, connections to GoTo kept alive: the fastest form of the glue).
//
//   GOTO_API_URL=… GOTO_ACCESS_TOKEN=… GOTO_ORGANIZER_KEY=… PORT=… node seed_route.js
'use strict';
const http = require('http');

const api = new URL(process.env.GOTO_API_URL);
const token = process.env.GOTO_ACCESS_TOKEN;
const organizer = process.env.GOTO_ORGANIZER_KEY;
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  const match = /^\/api\/register\/(\d+)$/.exec(req.url);
  if (req.method !== 'POST' || !match) return reply(res, 404, { error: 'not found' });
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    let person;
    try { person = JSON.parse(body); } catch (e) { return reply(res, 400, { error: 'bad json' }); }
    const call = http.request({
      host: api.hostname,
      port: api.port,
      path: `/G2W/rest/v2/organizers/${organizer}/webinars/${match[1]}/registrants`,
      method: 'POST',
      agent,
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        Accept: 'application/json',
      },
    }, (answer) => {
      let text = '';
      answer.setEncoding('utf8');
      answer.on('data', (chunk) => { text += chunk; });
      answer.on('end', () => {
        if (answer.statusCode !== 201) return reply(res, 502, { error: `GoTo answered ${answer.statusCode}` });
        const created = JSON.parse(text);
        reply(res, 201, { status: 'registered', joinUrl: created.joinUrl });
      });
    });
    call.on('error', (e) => reply(res, 502, { error: e.message }));
    call.end(JSON.stringify(person));
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`seed route listening on http://127.0.0.1:${server.address().port}`);
});

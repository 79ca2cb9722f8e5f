/**
 * A stand-in for the setup portal's pages around the test sign-in engine (src/setup/test-sign-in.ts):
 *   GET /harness/{link}/start/{connection}  -> testSignIn.begin, to where it says (a 303, or a form to post)
 *   GET /harness/{link}/result?result=…     -> testSignIn.outcome + render in the page shell (404 when unknown)
 * mounted behind the app's gateway session, in front of the real app (startPortico's `wrap`).
 */
import express from 'express';
import type { RequestListener } from 'node:http';
import { layout } from '../../src/http/html.js';
import { sendOutbound } from '../../src/http/outbound-form.js';
import type { TestApp } from './app.js';

export function testSignInHarness(t: TestApp): RequestListener {
  const outer = express();
  const r = express.Router();
  r.get('/harness/:link/start/:connection', async (req, res) => {
    const connection = await t.runtime.store.connections.get(req.params.connection);
    if (!connection) return void res.status(404).type('text').send('no such connection');
    sendOutbound(res, await t.testSignIn.begin(req, connection, { linkId: req.params.link, returnTo: `/harness/${req.params.link}/result` }));
  });
  r.get('/harness/:link/result', async (req, res) => {
    const outcome = await t.testSignIn.outcome(req.params.link, String(req.query.result ?? ''));
    if (!outcome) return void res.status(404).type('text').send('unknown result');
    res.type('html').send(layout('Test sign-in', t.testSignIn.render(outcome)));
  });
  outer.use('/harness', t.session);
  outer.use(r);
  outer.use(t.express);
  return outer;
}

#!/usr/bin/env python3
"""Drives a headless Firefox ESR through Marionette for the tests.

    driver.py --fxa URL --tokenserver URL --dead-port PORT --marionette-port PORT --log FILE

Starts Firefox on a fresh profile whose Firefox Accounts servers are the
tests' stand-in at --fxa and whose Sync tokenserver is --tokenserver. Every
other request goes to a proxy at 127.0.0.1:--dead-port, where nothing
listens: the browser reaches loopback and nothing else.

It answers {"ok": true, "result": {"firefox_pid": PID}} once Firefox runs
(Firefox leads a process group of its own), then reads one JSON command per line on stdin and answers each with one JSON
line on stdout, {"ok": true, "result": ...} or {"ok": false, "error": ...}:

    {"cmd": "sign_in", "uid": ..., "email": ..., "session": ..., "kid": ..., "k": ...}
    {"cmd": "add_bookmarks", "folder": ..., "titles": [...]}
    {"cmd": "sync"}
    {"cmd": "bookmarks"}
    {"cmd": "quit"}

sign_in and sync return once a sync has finished, with Sync's status.
"""

import argparse
import json
import sys

from marionette_driver.marionette import Marionette

SYNC_SCOPE = "https://identity.mozilla.com/apps/oldsync"

# Run in Firefox's chrome context. `args` is the command; the async body's
# value (or its error) is handed back through Marionette's callback.
PRELUDE = """
const [args, resolve] = arguments;
const { getFxAccountsSingleton } = ChromeUtils.importESModule(
  "resource://gre/modules/FxAccounts.sys.mjs");
const { Weave } = ChromeUtils.importESModule("resource://services-sync/main.sys.mjs");
const { PlacesUtils } = ChromeUtils.importESModule(
  "resource://gre/modules/PlacesUtils.sys.mjs");

const sleep = ms => new Promise(r => setTimeout(r, ms));

// Resolves with the topic that ends the next sync (a sync whose login
// fails ends with the login error alone).
function nextSyncEnd() {
  const topics = [
    "weave:service:sync:finish", "weave:service:sync:error", "weave:service:login:error",
  ];
  return new Promise(done => {
    const observer = {
      observe(_subject, topic) {
        for (const t of topics) Services.obs.removeObserver(observer, t);
        done(topic);
      },
    };
    for (const t of topics) Services.obs.addObserver(observer, t);
  });
}

function status(topic) {
  return {
    topic,
    service: Weave.Status.service,
    sync: Weave.Status.sync,
    login: Weave.Status.login,
    engines: Weave.Status.engines,
    cluster: Weave.Service.clusterURL,
  };
}

// Syncs until one sync succeeds (a sync that met a 401 fails, and the next
// one follows the new token's node), at most `tries` times.
async function syncUntilOk(tries) {
  const attempts = [];
  for (let i = 0; i < tries; i++) {
    while (Weave.Service.locked) await sleep(100);
    const end = nextSyncEnd();
    Weave.Service.sync({ why: "user" });
    const s = status(await end);
    attempts.push(s);
    if (s.topic == "weave:service:sync:finish" && s.service == "success.status_ok") break;
    await sleep(500);
  }
  return attempts;
}
"""

COMMANDS = {
    "sign_in": """
      const fxa = getFxAccountsSingleton();
      const end = nextSyncEnd();
      await fxa._internal.setSignedInUser({
        uid: args.uid,
        email: args.email,
        sessionToken: args.session,
        verified: true,
        scopedKeys: { [args.scope]: { kid: args.kid, k: args.k, kty: "oct", scope: args.scope } },
      });
      // What the "Sync" button does once an account is in: the first sync
      // starts from the notification this sends.
      await Weave.Service.configure();
      const first = status(await end);
      return first.service == "success.status_ok" ? [first] : [first, ...(await syncUntilOk(3))];
    """,
    "add_bookmarks": """
      const children = args.titles.map((title, i) => ({
        title, url: `https://example.com/${encodeURIComponent(args.folder)}/${i}`,
      }));
      await PlacesUtils.bookmarks.insertTree({
        guid: PlacesUtils.bookmarks.toolbarGuid,
        children: [{ title: args.folder, type: PlacesUtils.bookmarks.TYPE_FOLDER, children }],
      });
      return children.length;
    """,
    "sync": "return await syncUntilOk(4);",
    "bookmarks": """
      const all = [];
      const walk = node => {
        if (node.uri) all.push({ title: node.title, url: node.uri });
        for (const child of node.children || []) walk(child);
      };
      walk(await PlacesUtils.promiseBookmarksTree(PlacesUtils.bookmarks.rootGuid));
      return all;
    """,
}


def prefs(fxa, tokenserver, dead_port):
    return {
        # Firefox Accounts and Sync: the stand-in and our tokenserver.
        "identity.fxaccounts.enabled": True,
        "identity.fxaccounts.allowHttp": True,
        "identity.fxaccounts.autoconfig.uri": "",
        "identity.fxaccounts.remote.root": fxa + "/",
        "identity.fxaccounts.auth.uri": fxa + "/v1",
        "identity.fxaccounts.remote.oauth.uri": fxa + "/v1",
        "identity.fxaccounts.remote.profile.uri": fxa + "/profile/v1",
        "identity.fxaccounts.remote.pairing.uri": f"ws://127.0.0.1:{dead_port}",
        "identity.fxaccounts.commands.enabled": False,
        "identity.sync.tokenserver.uri": tokenserver + "/1.0/sync/1.5",
        "services.sync.log.appender.dump": "Info",
        # Everything that is not loopback goes to a proxy that is not there
        # (loopback itself is never proxied).
        "network.proxy.type": 1,
        "network.proxy.allow_hijacking_localhost": False,
        "network.proxy.http": "127.0.0.1",
        "network.proxy.http_port": dead_port,
        "network.proxy.ssl": "127.0.0.1",
        "network.proxy.ssl_port": dead_port,
        "network.proxy.socks": "127.0.0.1",
        "network.proxy.socks_port": dead_port,
        "network.proxy.socks_remote_dns": True,
        "network.trr.mode": 5,
        "network.dns.disablePrefetch": True,
        "network.prefetch-next": False,
        "network.http.speculative-parallel-limit": 0,
        "browser.safebrowsing.malware.enabled": False,
        "browser.safebrowsing.phishing.enabled": False,
        "browser.safebrowsing.downloads.enabled": False,
        "browser.safebrowsing.update.enabled": False,
        "app.update.disabledForTesting": True,
        "app.normandy.enabled": False,
        "toolkit.telemetry.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
    }


def answer(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fxa", required=True)
    parser.add_argument("--tokenserver", required=True)
    parser.add_argument("--dead-port", type=int, required=True)
    parser.add_argument("--marionette-port", type=int, required=True)
    parser.add_argument("--binary", default="/usr/bin/firefox-esr")
    parser.add_argument("--log", required=True, help="where Firefox's own output goes")
    opts = parser.parse_args()

    client = Marionette(
        host="127.0.0.1",
        port=opts.marionette_port,
        bin=opts.binary,
        headless=True,
        prefs=prefs(opts.fxa, opts.tokenserver, opts.dead_port),
        gecko_log=opts.log,
    )
    client.start_session()
    client.set_context(client.CONTEXT_CHROME)
    client.timeout.script = 180
    answer({"ok": True, "result": {"firefox_pid": client.instance.runner.process_handler.pid}})

    for line in sys.stdin:
        command = json.loads(line)
        name = command["cmd"]
        if name == "quit":
            break
        command.setdefault("scope", SYNC_SCOPE)
        script = PRELUDE + """
          (async () => {%s})().then(
            result => resolve({ ok: true, result }),
            error => resolve({ ok: false, error: String(error) + "\\n" + error.stack }));
        """ % COMMANDS[name]
        try:
            answer(client.execute_async_script(script, script_args=[command]))
        except Exception as error:  # the test reads it and fails
            answer({"ok": False, "error": repr(error)})

    client.quit(in_app=True)


if __name__ == "__main__":
    main()

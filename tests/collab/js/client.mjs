// A stock yjs + y-websocket client: edits the document's Y.Text 'content' alongside another
// client, then prints what it ended with (JSON on stdout) for the Python test to compare.
//   node client.mjs ROOMS_URL DOCUMENT_ID TOKEN EDITS
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [serverUrl, room, token, edits] = process.argv.slice(2)
const doc = new Y.Doc()
const provider = new WebsocketProvider(serverUrl, room, doc, {
  WebSocketPolyfill: WebSocket,
  params: { token },
  disableBc: true,
})
const denied = []
provider.on('connection-error', (e) => console.error('connection error', e.message))
provider.awareness.setLocalStateField('user', { name: 'Anonymous' })
provider.awareness.setLocalStateField('cursor', { index: 0 })
const text = doc.getText('content')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const until = async (check, what, ms = 20000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) { console.error('timed out: ' + what); process.exit(2) }
    await sleep(10)
  }
}
await until(() => provider.synced, 'sync')
for (let i = 0; i < Number(edits); i++) {
  text.insert(Math.floor(Math.random() * (text.length + 1)), `<js${i}>`)
  if (i % 5 === 0) await sleep(2)
}
text.insert(text.length, '<js-done>')
await until(() => text.toString().includes('<py-done>'), 'the python client to finish')
await sleep(500) // nothing is edited after both markers: let the last updates arrive
const others = {}
provider.awareness.getStates().forEach((state, clientId) => {
  if (clientId !== doc.clientID) others[clientId] = state
})
process.stdout.write(JSON.stringify({ text: text.toString(), others, denied }) + '\n')
provider.destroy()
process.exit(0)

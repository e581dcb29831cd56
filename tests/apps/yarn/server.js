// Answers which dependencies were installed: ms (a dependency) must be; is-number (a
// devDependency) must not be when NPM_USE_PRODUCTION is true.
const http = require("http");
const ms = require("ms");
let dev = true;
try {
  require.resolve("is-number");
} catch (e) {
  dev = false;
}
http
  .createServer((req, res) => {
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ oneMinute: ms("1m"), devInstalled: dev, node: process.version }));
  })
  .listen(Number(process.env.PORT), "127.0.0.1");

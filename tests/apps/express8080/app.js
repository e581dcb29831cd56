// As AWS's Elastic Beanstalk Express sample does: the port is hard-coded, PORT is never read.
// It answers its pid and its host name (in a container, pids repeat; host names do not).
const express = require('express');
const os = require('os');
const app = express();
const port = 8080;
app.get('/', (req, res) => res.json({ pid: process.pid, host: os.hostname() }));
app.listen(port, () => console.log(`listening on ${port}`));

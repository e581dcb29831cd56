// An Express app that reads PORT, as Elastic Beanstalk's Node.js platform expects.
const express = require("express");

const app = express();
const port = process.env.PORT || 8080;

app.get("/", (req, res) => {
  res.send(`Hello from Beanpole (Node.js), instance ${process.env.BEANPOLE_INSTANCE_ID} pid ${process.pid}\n`);
});

app.get("/whoami", (req, res) => {
  res.json({ instance: process.env.BEANPOLE_INSTANCE_ID, pid: process.pid });
});

app.listen(port, () => console.log(`listening on ${port}`));

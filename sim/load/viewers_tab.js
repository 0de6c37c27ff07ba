// Locust's Viewers tab draws only a table: this puts the charts page (/player-sim/viewers/charts)
// under it, and takes it away on the other tabs. Locust's page is a React app that re-renders its
// tabs, so the frame is placed again whenever the tab's table is (re)drawn.
(function () {
  "use strict";
  var ID = "player-sim-viewers-charts";
  function place() {
    var head = document.querySelector('th[data-sortkey="scenario"]');   // only the Viewers table has it
    var frame = document.getElementById(ID);
    if (!head) {
      if (frame) frame.remove();
      return;
    }
    var table = head.closest(".MuiTableContainer-root") || head.closest("table");
    if (frame && frame.previousElementSibling === table) return;
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = ID;
      frame.title = "Viewers over time";
      frame.src = "player-sim/viewers/charts";
      frame.style.cssText = "width:100%;height:420px;border:0;margin-top:1em;display:block";
      fit(frame);
    }
    table.after(frame);
  }
  function fit(frame) {   // as tall as the page inside (one row of charts, or two on a narrow screen)
    setInterval(function () {
      var inner = frame.contentDocument && frame.contentDocument.documentElement;
      if (inner && inner.scrollHeight) frame.style.height = inner.scrollHeight + "px";
    }, 1000);
  }
  new MutationObserver(place).observe(document.documentElement, {childList: true, subtree: true});
  place();
})();

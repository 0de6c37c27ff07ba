"use strict";
function cell(text, cls){var td=document.createElement("td");td.textContent=text;if(cls)td.className=cls;return td;}
function fill(id, rows){
  var body=document.querySelector("#"+id+" tbody");body.textContent="";
  rows.forEach(function(r){var tr=document.createElement("tr");
    r.forEach(function(c,i){tr.appendChild(cell(c===null||c===undefined?"-":String(c), i===0||(id==="types"&&i===2)?"l":""));});
    body.appendChild(tr);});
}
function show(s){
  document.getElementById("eps").textContent=s.events_per_second;
  ["accepted","rejected","faulted","flagged"].forEach(function(k){document.getElementById(k).textContent=s[k];});
  var run=s.run||{};document.getElementById("run_id").textContent=run.id||"(none yet)";
  ["sent","received","lost"].forEach(function(k){document.getElementById("run_"+k).textContent=run.id?run[k]:"-";});
  fill("headline", Object.keys(s.headline).map(function(p){var h=s.headline[p];
    return [p,h.loads,h.plays,h.play_rate===null?null:(100*h.play_rate).toFixed(1)+" %",h.sessions,h.minutes_viewed];}));
  fill("types", s.by_type.map(function(t){return [t.protocol,t.eventType,t.name,t.count];}));
  fill("errors", s.errors.map(function(e){return [e.code,e.count];}));
  document.getElementById("status").textContent="updated "+new Date(s.time*1000).toLocaleTimeString()+
    " \u2014 "+s.total+" requests stored";
  charts(s);
}
var PLOT_CONFIG={displaylogo:false,responsive:true};
function layout(title, x, y, xtype){return {title:{text:title,font:{size:14},x:0.01,xanchor:"left"},
  margin:{t:40,r:20,b:50,l:60},xaxis:{title:{text:x},automargin:true,type:xtype||"-"},yaxis:{title:{text:y},rangemode:"tozero",automargin:true},
  legend:{orientation:"h",y:-0.3},barmode:"group"};}
function charts(s){
  if(!window.Plotly)return;
  var pts=s.series.points, step=s.series.bucket_s;
  var xs=pts.map(function(p){return new Date(p[0]*1000);});
  Plotly.react("chart_eps",[{type:"scatter",mode:"lines",name:"events/s",x:xs,
    y:pts.map(function(p){return (p[1]+p[2])/step;}),line:{color:"#3b6ea5"}}],
    layout("Events per second (last 5 minutes)","time","events/s (accepted and rejected)"),PLOT_CONFIG);
  var colours={accepted:"#5a9e6f",rejected:"#b5485d",flagged:"#e07b39"};
  Plotly.react("chart_outcomes",["accepted","rejected","flagged"].map(function(k,i){
    return {type:"scatter",mode:"lines",name:k,x:xs,y:pts.map(function(p){return p[i+1];}),
            line:{color:colours[k]}};}),
    layout("Requests per "+step+" s by outcome","time","requests per "+step+" s"),PLOT_CONFIG);
  Plotly.react("chart_funnel",Object.keys(s.funnel).map(function(p){
    return {type:"bar",name:p,x:s.funnel[p].map(function(f){return f.step;}),
            y:s.funnel[p].map(function(f){return f.count;}),texttemplate:"%{y:,}",textposition:"outside",
            cliponaxis:false};}),
    layout("Play funnel (accepted beacons)","step","beacons","category"),PLOT_CONFIG);
  document.body.dataset.charts="3";
}
function refresh(){
  fetch("stats.json",{cache:"no-store"}).then(function(r){return r.json();}).then(show)
    .catch(function(e){document.getElementById("status").textContent="cannot reach the collector: "+e;});
}
refresh(); setInterval(refresh, 2000);

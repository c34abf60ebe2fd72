# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The HTML of the search page (a Jinja template, autoescaped by Flask)."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rsitr_mm search{% if text %}: {{ text.query }}{% endif %}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #1d2430;
         background: #f4f6f8; }
  header { background: #1f3b57; color: #fff; padding: 10px 24px; }
  header h1 { font-size: 20px; margin: 0 0 4px 0; }
  .ident { font-size: 12.5px; color: #d5e2ef; line-height: 1.5; }
  .ident code { color: #fff; }
  main { padding: 14px 24px; }
  form { display: inline-flex; gap: 8px; align-items: center;
         background: #fff; padding: 8px 12px; border-radius: 6px;
         box-shadow: 0 1px 2px #0002; margin: 0 12px 10px 0; }
  input[type=text] { width: 380px; padding: 6px; font-size: 15px; }
  input[name=k] { width: 52px; padding: 5px; }
  button { padding: 6px 14px; font-size: 14px; cursor: pointer; }
  .error { background: #fde8e8; border: 1px solid #e0a0a0; color: #8a1c1c;
           padding: 8px 12px; border-radius: 6px; margin: 4px 0 12px 0; }
  h2 { font-size: 16px; margin: 12px 0 8px 0; }
  .grid { display: grid; gap: 10px;
          grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); }
  .card { background: #fff; border-radius: 6px; padding: 6px;
          box-shadow: 0 1px 2px #0002; font-size: 12.5px; }
  .card img { width: 100%; aspect-ratio: 1 / 1; object-fit: cover;
              border-radius: 4px; display: block; }
  .meta { display: flex; justify-content: space-between; margin-top: 4px; }
  .score { font-weight: 600; font-variant-numeric: tabular-nums; }
  .file { color: #475366; overflow-wrap: anywhere; }
  .query { display: flex; gap: 16px; align-items: flex-start; }
  .query img { width: 180px; border-radius: 6px; }
  ol.captions { margin: 0; padding-left: 22px; font-size: 14px; }
  ol.captions li { margin: 3px 0; }
  .muted { color: #6b7686; font-size: 13px; }
</style>
</head>
<body>
{% macro image_cards(results) %}
    {% for r in results %}
    <div class="card">
      <img src="/thumb/{{ r.row }}" alt="{{ r.file }}">
      <div class="meta"><span>#{{ r.rank }}</span>
        <span class="score">{{ '%.4f' % r.score }}</span></div>
      <div class="file">{{ r.file }}</div>
    </div>
    {% endfor %}
{% endmacro %}
<header>
  <h1>rsitr_mm image-text search</h1>
  <div class="ident" id="identity">
    model <code>{{ info.model.type }}</code>,
    config <code title="{{ info.model.config }}">
      {{- _short(info.model.config) }}</code>,
    checkpoint <code title="{{ info.model.checkpoint }}">
      {{- _short(info.model.checkpoint) }}</code>
    {%- if info.model.checkpoint_sha256 %} (sha256
      <code>{{ info.model.checkpoint_sha256 }}</code>)
    {%- endif %},
    weights <code>{{ info.model.weights_sha256 }}</code>,
    dim {{ info.model.embed_dim }}<br>
    index <code>{{ info.index.folder }}</code>:
    {{ info.index.images }} images ({{ info.index.dtype }}
    {%- if info.index.skipped %}, {{ info.index.skipped }} skipped
    {%- endif %});
    captions:
    {% if info.captions.count -%}
      {{ info.captions.count }} from
      <code>{{ _short(info.captions.source) }}</code>
    {%- else -%}
      none (start with --captions FILE)
    {%- endif %}
  </div>
</header>
<main>
  <form action="/" method="get">
    <input type="text" name="q" value="{{ q or '' }}"
           placeholder="describe the images to find" autofocus>
    k <input type="number" name="k" min="1" max="{{ max_k }}"
             value="{{ (text.k if text else default_k) }}">
    <button type="submit">Search images</button>
  </form>
  <form action="/image" method="post" enctype="multipart/form-data">
    <input type="file" name="image" accept="image/*">
    k <input type="number" name="k" min="1" max="{{ max_k }}"
             value="{{ (upload.k if upload else default_k) }}">
    <button type="submit">Search by image</button>
    <span class="muted">&le; {{ max_upload }}</span>
  </form>

  {% if error %}<div class="error" id="error">{{ error }}</div>{% endif %}

  {% if text %}
  {% if text.unknown_words %}<div class="error" id="unknown-words">None of
    the words of &ldquo;{{ text.query }}&rdquo; is in the model's vocabulary:
    the images below answer an empty query, not these words. Try the words of
    the training captions.</div>{% endif %}
  <h2>Top {{ text.images|length }} images for
    &ldquo;{{ text.query }}&rdquo;</h2>
  <div class="grid" id="images">
    {{ image_cards(text.images) }}
  </div>
  {% endif %}

  {% if upload %}
  <div class="query">
    <img src="{{ upload.preview }}" alt="query image">
    <div>
      <h2>Nearest captions for {{ upload.query }}</h2>
      {% if upload.captions %}
      <ol class="captions" id="captions">
        {% for c in upload.captions %}
        <li><span class="score">{{ '%.4f' % c.score }}</span>
          {{ c.caption }}</li>
        {% endfor %}
      </ol>
      {% else %}
      <p class="muted">No caption list is served
        (start with --captions FILE).</p>
      {% endif %}
    </div>
  </div>
  <h2>Nearest indexed images</h2>
  <div class="grid" id="images">
    {{ image_cards(upload.images) }}
  </div>
  {% endif %}

  {% if not text and not upload and not error %}
  <p class="muted">Type a description, or upload an image. Scores are cosine
  similarities between the query and each indexed image (or caption).</p>
  {% endif %}
</main>
</body>
</html>
"""

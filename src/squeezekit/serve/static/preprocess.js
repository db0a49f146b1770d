// The runtime's preprocessing, in the browser, bit for bit: Pillow's bilinear resize of the shorter
// side (its fixed-point, antialiased resampling: libImaging/Resample.c), the centre crop, then the
// model's channel order, mean and scale (squeezekit.preprocessing.resize_and_crop, preprocess_input).
"use strict";

const PRECISION_BITS = 32 - 8 - 2;

function bilinear(x) {
  x = Math.abs(x);
  return x < 1 ? 1 - x : 0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc: for each output index, [first input, count,
// integer weights].
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale;
  const rows = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const k = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = bilinear((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    const weights = new Array(xmax);
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    rows.push([xmin, xmax, weights]);
  }
  return rows;
}

function clip8(sum) {
  const value = Math.floor(sum / (1 << PRECISION_BITS));
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

// rgb: Uint8Array of width*height*3 -> Uint8Array of outWidth*outHeight*3 (horizontal pass, then vertical).
function resampleBilinear(rgb, width, height, outWidth, outHeight) {
  let source = rgb, w = width;
  if (outWidth !== width) {
    const rows = coefficients(width, outWidth);
    const out = new Uint8Array(outWidth * height * 3);
    for (let y = 0; y < height; y++) {
      for (let xx = 0; xx < outWidth; xx++) {
        const [xmin, count, k] = rows[xx];
        for (let c = 0; c < 3; c++) {
          let sum = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < count; x++) sum += source[(y * w + xmin + x) * 3 + c] * k[x];
          out[(y * outWidth + xx) * 3 + c] = clip8(sum);
        }
      }
    }
    source = out;
    w = outWidth;
  }
  if (outHeight !== height) {
    const rows = coefficients(height, outHeight);
    const out = new Uint8Array(w * outHeight * 3);
    for (let yy = 0; yy < outHeight; yy++) {
      const [ymin, count, k] = rows[yy];
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          let sum = 1 << (PRECISION_BITS - 1);
          for (let y = 0; y < count; y++) sum += source[((ymin + y) * w + x) * 3 + c] * k[y];
          out[(yy * w + x) * 3 + c] = clip8(sum);
        }
      }
    }
    source = out;
  }
  return source;
}

// Python's round(): halves go to the even neighbour.
function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// squeezekit.preprocessing.resize_and_crop on RGB bytes -> crop*crop*3 bytes.
function resizeAndCrop(rgb, width, height, resize, crop) {
  if (Math.min(width, height) !== resize) {
    let size;
    if (width <= height) size = [resize, Math.max(resize, roundHalfEven(height * resize / width))];
    else size = [Math.max(resize, roundHalfEven(width * resize / height)), resize];
    rgb = resampleBilinear(rgb, width, height, size[0], size[1]);
    [width, height] = size;
  }
  const left = Math.floor((width - crop) / 2), top = Math.floor((height - crop) / 2);
  const out = new Uint8Array(crop * crop * 3);
  for (let y = 0; y < crop; y++) {
    out.set(rgb.subarray(((top + y) * width + left) * 3, ((top + y) * width + left + crop) * 3), y * crop * 3);
  }
  return out;
}

// squeezekit.preprocessing.preprocess_input: channel order, mean, scale -> float32 NHWC.
function toTensorData(pixels, preprocessing) {
  const data = new Float32Array(pixels.length);
  const bgr = preprocessing.channel_order === "BGR";
  const [m0, m1, m2] = preprocessing.mean;
  const scale = Math.fround(preprocessing.scale);
  for (let i = 0; i < pixels.length; i += 3) {
    const r = pixels[i], g = pixels[i + 1], b = pixels[i + 2];
    const [c0, c1, c2] = bgr ? [b, g, r] : [r, g, b];
    data[i] = Math.fround(Math.fround(c0 - Math.fround(m0)) * scale);
    data[i + 1] = Math.fround(Math.fround(c1 - Math.fround(m1)) * scale);
    data[i + 2] = Math.fround(Math.fround(c2 - Math.fround(m2)) * scale);
  }
  return data;
}

// An image (a Blob) as RGB bytes, as Pillow decodes it: EXIF orientation applied, no colour
// management, transparency composited onto white.
async function decodeRGB(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none",
                                                 premultiplyAlpha: "none" });
  return rgbOf(bitmap, bitmap.width, bitmap.height);
}

function rgbOf(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0);
  const rgba = context.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    const alpha = rgba[i + 3];
    if (alpha === 255) {
      rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
    } else {  // Pillow's alpha_composite onto white, rounded as it rounds
      for (let c = 0; c < 3; c++) rgb[j + c] = Math.round((rgba[i + c] * alpha + 255 * (255 - alpha)) / 255);
    }
  }
  return { rgb, width, height };
}

self.squeezekitPreprocess = { resizeAndCrop, toTensorData, decodeRGB, rgbOf, roundHalfEven };

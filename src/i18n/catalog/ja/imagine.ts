import type { Translation } from '../../translation.js';
import type enUS from '../en-US/imagine.js';

const imagine: Translation<typeof enUS> = {};

export default imagine;
